import { describe, expect, it } from "vitest";
import { compareListings, parseListing } from "./workspace-listing.js";

const record = (path: string, { type = "f", size = 5, inode = 10, mtime = "1700000000.1000000000", ctime = "1700000000.1000000000" } = {}) =>
  `${type} 644 ${size} ${inode} ${mtime} ${ctime} ${path}\0`;

describe("parseListing", () => {
  it("reads names with spaces and newlines, and the clock line", () => {
    const listing = parseListing(Buffer.from(`${record("a b/c d.txt")}${record("new\nline", { type: "l" })}${record("dir", { type: "d" })}1700000005.5\n`));
    expect(listing?.listedAt).toBe(1700000005.5);
    expect([...listing!.entries.keys()]).toEqual(["a b/c d.txt", "new\nline", "dir"]);
    expect(listing!.entries.get("new\nline")).toMatchObject({ type: "symlink", size: 5 });
  });

  it("gives up (whole-tree collect) on output that is not GNU find's, or on a name that is not UTF-8", () => {
    expect(parseListing(Buffer.from("find: unrecognized: -printf\n"))).toBeUndefined();
    expect(parseListing(Buffer.from(`f 644 5 10 x y name\0${"1700000005.5"}`))).toBeUndefined();
    expect(parseListing(Buffer.concat([Buffer.from("f 644 5 10 1.0 1.0 bad"), Buffer.from([0xff, 0xfe]), Buffer.from("\x001700000005.5\n")]))).toBeUndefined();
  });
});

describe("compareListings", () => {
  const placed = parseListing(Buffer.from(`${record("same")}${record("touched")}${record("gone")}${record("racy", { ctime: "1700000005.49" })}1700000005.5\n`))!;

  it("lists changed, new and racy paths, and placed files that are gone or became folders", () => {
    const now = parseListing(
      Buffer.from(`${record("same")}${record("touched", { ctime: "1700000009.0" })}${record("racy", { ctime: "1700000005.49" })}${record("gone", { type: "d" })}${record("gone/inside")}${record("added")}1700000010.0\n`),
    )!;
    expect(compareListings(placed, now)).toEqual({ changed: ["touched", "racy", "gone/inside", "added"], removed: ["gone"] });
  });
});
