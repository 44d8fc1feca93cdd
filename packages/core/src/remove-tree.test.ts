import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { removeTree } from "./remove-tree.js";

const made: string[] = [];
afterEach(async () => {
  for (const folder of made.splice(0)) await rm(folder, { recursive: true, force: true });
});
async function folder(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "remove-tree-"));
  made.push(dir);
  return dir;
}

describe("removeTree", () => {
  it("removes a nested tree, names starting with a dash included, and never what a symlink in it points to", async () => {
    const root = await folder();
    const outside = join(root, "outside");
    await mkdir(outside);
    await writeFile(join(outside, "keep.txt"), "kept");
    const tree = join(root, "-tree");
    await mkdir(join(tree, "a", "b", "-c"), { recursive: true });
    await writeFile(join(tree, "a", "b", "-c", "file"), "x");
    await writeFile(join(tree, "-rf"), "x");
    await symlink(outside, join(tree, "a", "link-to-outside"));
    await symlink(join(outside, "keep.txt"), join(tree, "file-link"));

    await removeTree(tree);

    expect(await readdir(root)).toEqual(["outside"]);
    expect(await readdir(outside)).toEqual(["keep.txt"]);
  });

  it("takes a missing folder as removed, and refuses a relative path before removing anything", async () => {
    const root = await folder();
    await expect(removeTree(join(root, "missing"))).resolves.toBeUndefined();
    await writeFile(join(root, "here"), "x");
    await expect(removeTree("here")).rejects.toThrow(/absolute path/);
    expect(await readdir(root)).toEqual(["here"]);
  });
});
