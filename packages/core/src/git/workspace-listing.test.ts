import { describe, expect, it } from "vitest";
import { compareListings, parseChanges, parseFolderChanges, parseListing, type WorkspaceChanges } from "./workspace-listing.js";

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

describe("parseChanges (the listing that prints in full only what changed)", () => {
  const placed = parseListing(
    Buffer.from(`${record("same", { inode: 1 })}${record("touched", { inode: 2 })}${record("gone", { inode: 3 })}${record("racy", { inode: 4, ctime: "1700000005.49" })}${record("a/x", { inode: 5 })}${record("b/x", { inode: 6 })}${record("a", { type: "d", inode: 7 })}${record("b", { type: "d", inode: 8 })}1700000005.5\n`),
  )!;
  const short = (type: string, inode: number, path: string) => `${type} ${inode} ${path}\0`;
  const full = (path: string, options: Parameters<typeof record>[1]) => `+${record(path, options)}`;

  it("takes an entry at its placed path with its placed inode as untouched, and compares everything else", () => {
    // a and b swapped: their files keep their old ctime, at each other's paths.
    const output = `${short("f", 1, "same")}${full("touched", { inode: 2, ctime: "1700000009.0" })}${short("f", 4, "racy")}${short("f", 6, "a/x")}${short("f", 5, "b/x")}${full("a", { type: "d", inode: 8, ctime: "1700000009.0" })}${full("b", { type: "d", inode: 7, ctime: "1700000009.0" })}${full("added", { ctime: "1700000009.0", size: 12 })}1700000010.0\n`;
    const changes = parseChanges(Buffer.from(output), placed)!;
    expect(changes.changed.sort()).toEqual(["a/x", "added", "b/x", "racy", "touched"]);
    expect(changes.removed).toEqual(["gone"]);
    expect(changes.entryAt("same")?.type).toBe("file");
    expect(changes.entryAt("added")).toMatchObject({ type: "file", size: 12 });
    expect(changes.entryAt("gone")).toBeUndefined();
  });

  it("counts a placed file that became a folder as removed, and gives up on output that is not GNU find's", () => {
    const output = `${short("f", 1, "same")}${short("f", 2, "touched")}${short("f", 4, "racy")}${short("f", 5, "a/x")}${short("f", 6, "b/x")}${short("d", 7, "a")}${short("d", 8, "b")}${full("gone", { type: "d", inode: 9, ctime: "1700000009.0" })}1700000010.0\n`;
    expect(parseChanges(Buffer.from(output), placed)).toMatchObject({ changed: ["racy"], removed: ["gone"] });
    expect(parseChanges(Buffer.from("find: unknown predicate `-newerct'\n"), placed)).toBeUndefined();
    expect(parseChanges(Buffer.from(`+f 644 x\0${"1700000010.0"}\n`), placed)).toBeUndefined();
  });
});

describe("parseFolderChanges (the listing that follows the folders that changed)", () => {
  const placed = parseListing(
    Buffer.from(
      [
        record("top", { inode: 1 }),
        record("a", { type: "d", inode: 2 }),
        record("a/x", { inode: 3 }),
        record("a/y", { inode: 4 }),
        record("a/sub", { type: "d", inode: 5 }),
        record("a/sub/z", { inode: 6 }),
        record("b", { type: "d", inode: 7 }),
        record("b/w", { inode: 8 }),
        record("racy", { inode: 9, ctime: "1700000005.49" }),
      ].join("") + "1700000005.5\n",
    ),
  )!;
  // Paths as find prints them from `.`; a folder changed after the threshold is printed in full, then listed from itself (depth 0).
  const at = (path: string) => (path === "" ? "." : `./${path}`);
  const full = (path: string, options: Parameters<typeof record>[1]) =>
    `+2049 ${record(at(path), options)}${options?.type === "d" ? `=0 d 2049 ${options.inode ?? 10} ${at(path)}\0` : ""}`;
  const seen = (type: string, inode: number, path: string) => `=1 ${type} 2049 ${inode} ./${path}\0`;
  const parse = (records: string[]) => parseFolderChanges(Buffer.from(`${records.join("")}1700000010.0\n`), placed);
  const changes = (records: string[]) => {
    const parsed = parse(records);
    expect(parsed).toBeTypeOf("object");
    return parsed as WorkspaceChanges;
  };
  const later = { ctime: "1700000009.0" };

  it("takes a placed entry it does not print as there untouched, and prints a racy one in full", () => {
    const found = changes([full("racy", { inode: 9, ctime: "1700000005.49" })]);
    // Racy: compared by content.
    expect(found).toMatchObject({ changed: ["racy"], removed: [] });
    expect(found.entryAt("a/sub/z")?.type).toBe("file");
    expect(found.entryAt("b/w")?.type).toBe("file");
  });

  it("counts a placed entry not seen in a folder that changed as gone, with everything that was below it", () => {
    const found = changes([full("a", { type: "d", inode: 2, ...later }), seen("f", 3, "a/x"), full("racy", { inode: 9, ctime: "1700000005.49" })]);
    expect(found.removed.sort()).toEqual(["a/sub/z", "a/y"]);
    expect(found.changed).toEqual(["racy"]);
    expect(found.entryAt("a/x")?.type).toBe("file");
    expect(found.entryAt("a/sub")).toBeUndefined();
    expect(found.entryAt("b/w")?.type).toBe("file");
  });

  it("lists the workdir's own entries when the workdir changed, and counts a racy entry it does not print as gone", () => {
    const found = changes([full("", { type: "d", inode: 99, ...later }), seen("d", 2, "a"), seen("d", 7, "b"), full("new", { inode: 10, ...later })]);
    expect(found.changed).toEqual(["new"]);
    expect(found.removed.sort()).toEqual(["racy", "top"]);
    expect(found.entryAt("a/x")?.type).toBe("file");
  });

  it("compares a file seen at a path that holds another inode, and counts what is below a folder that became a file as gone", () => {
    const found = changes([full("b", { type: "d", inode: 7, ...later }), seen("f", 3, "b/w"), full("a", { inode: 20, ...later }), full("racy", { inode: 9, ctime: "1700000005.49" })]);
    expect(found.changed.sort()).toEqual(["a", "b/w", "racy"]);
    expect(found.removed.sort()).toEqual(["a/sub/z", "a/x", "a/y"]);
  });

  it("asks for the whole tree when a folder is seen where another was placed (moved there with its old ctime), and gives up on output that is not GNU find's", () => {
    expect(parse([full("a", { type: "d", inode: 2, ...later }), seen("d", 7, "a/sub")])).toBe("moved folder");
    expect(parse([full("b", { type: "d", inode: 7, ...later }), seen("d", 30, "b/new")])).toBe("moved folder");
    expect(parseFolderChanges(Buffer.from("find: unknown predicate `-newerct'\n"), placed)).toBeUndefined();
    // Paths not as find prints them from `.`, and a short record of the workdir itself.
    expect(parse([`+2049 ${record("a", { type: "f", inode: 2, ...later })}`])).toBeUndefined();
    expect(parse(["=1 d 2049 2 .\0"])).toBeUndefined();
  });

  it("gives up when a folder was not listed from the folder the first find saw (swapped for a symlink meanwhile), or not listed at all", () => {
    const folder = `+2049 ${record("./a", { type: "d", inode: 2, ...later })}`;
    expect(parse([folder, "=0 d 2049 2 ./a\0", seen("f", 3, "a/x")])).toBeTypeOf("object");
    expect(parse([folder, "=0 d 2049 77 ./a\0", seen("f", 3, "a/x")])).toBeUndefined();
    expect(parse([folder, "=0 d 64768 2 ./a\0", seen("f", 3, "a/x")])).toBeUndefined();
    expect(parse([folder, seen("f", 3, "a/x")])).toBeUndefined();
  });
});
