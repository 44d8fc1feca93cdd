import { describe, expect, it } from "vitest";
import { createGitFixture, gitIn } from "./git-fixture.js";
import { readIndexEntries } from "./index-file.js";

// What git itself lists for the index: path -> mode and object id.
async function gitsOwn(dir: string): Promise<Map<string, { mode: string; object: string }>> {
  const records = (await gitIn(dir, ["ls-files", "--stage", "-z"])).split("\0").filter((record) => record !== "");
  return new Map(records.map((record) => [record.slice(record.indexOf("\t") + 1), { mode: record.slice(0, 6), object: record.split(" ")[1]! }]));
}

const longName = `${"d".repeat(200)}/${"n".repeat(240)}.txt`;
const files = { "README.md": "# r\n", "bin/run.sh": { content: "#!/bin/sh\n", executable: true as const }, link: { symlink: "README.md" }, "naïve café/ü.txt": "u\n", [longName]: "long\n" };

describe("readIndexEntries", () => {
  it("reads the asked-for entries of git's own index as git lists them: modes, symlinks, long names and names not ASCII, SHA-1 and SHA-256", async () => {
    for (const objectFormat of ["sha1", "sha256"] as const) {
      await using fixture = await createGitFixture({ objectFormat, files });
      const own = await gitsOwn(fixture.workPath);
      const asked = new Set([...own.keys(), "not/there.txt"]);
      expect(await readIndexEntries(fixture.workPath, asked, objectFormat === "sha256" ? 32 : 20)).toEqual(own);
      expect(own.get("bin/run.sh")?.mode).toBe("100755");
      expect(own.get("link")?.mode).toBe("120000");
      expect(await readIndexEntries(fixture.workPath, new Set(["README.md"]), objectFormat === "sha256" ? 32 : 20)).toEqual(new Map([["README.md", own.get("README.md")]]));
    }
  });

  it("reads names of 4,095 bytes and more (their length no longer fits the entry's flags), beside names one byte off an asked one's length", async () => {
    await using fixture = await createGitFixture({ files });
    const blob = (await gitIn(fixture.workPath, ["hash-object", "-w", "--stdin"], "x\n")).trim();
    // Index entries only (a path this long cannot be a file): the index takes what git takes.
    const names = [`${"a".repeat(4094)}`, `${"b".repeat(4095)}`, `${"c".repeat(2000)}/${"d".repeat(3000)}`, `${"e".repeat(4096)}`];
    for (const name of names) await gitIn(fixture.workPath, ["update-index", "--add", "--cacheinfo", `100644,${blob},${name}`]);
    const own = await gitsOwn(fixture.workPath);
    expect(names.every((name) => own.has(name))).toBe(true);
    expect(await readIndexEntries(fixture.workPath, new Set([...own.keys(), `${"b".repeat(4094)}`, `${"e".repeat(4097)}`]), 20)).toEqual(own);
    expect(await readIndexEntries(fixture.workPath, new Set([names[1]!]), 20)).toEqual(new Map([[names[1]!, { mode: "100644", object: blob }]]));
  });

  it("gives up (git is asked) on an index it does not read: version 4's compressed names, an entry with extended flags, none at all", async () => {
    await using fixture = await createGitFixture({ files });
    const asked = new Set((await gitsOwn(fixture.workPath)).keys());
    await gitIn(fixture.workPath, ["update-index", "--index-version", "4"]);
    expect(await readIndexEntries(fixture.workPath, asked, 20)).toBeUndefined();
    await gitIn(fixture.workPath, ["update-index", "--index-version", "3"]);
    await gitIn(fixture.workPath, ["update-index", "--skip-worktree", "README.md"]);
    expect(await readIndexEntries(fixture.workPath, asked, 20)).toBeUndefined();
    await gitIn(fixture.workPath, ["update-index", "--no-skip-worktree", "README.md"]);
    expect(await readIndexEntries(fixture.workPath, asked, 20)).toEqual(await gitsOwn(fixture.workPath));
    await gitIn(fixture.workPath, ["rm", "--cached", "-r", "-q", "."]);
    await gitIn(fixture.workPath, ["read-tree", "--empty"]);
    expect(await readIndexEntries(fixture.workPath, asked, 20)).toEqual(new Map());
    expect(await readIndexEntries(`${fixture.workPath}/missing`, asked, 20)).toBeUndefined();
  });
});
