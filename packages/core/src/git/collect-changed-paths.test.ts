import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { ErrorCode, RunningAgentError } from "../errors.js";
import { createLocalSandbox } from "../sandbox-local/local-sandbox.js";
import type { SandboxSession } from "../spec/sandbox-spec.js";
import { cloneRepository } from "./clone.js";
import { collectChanges, type CollectChangesInput } from "./collect.js";
import { createGitFixture, gitIn, temporaryFolders, type GitFixture } from "./git-fixture.js";
import { placeRepository } from "./place.js";
import { isRacy, listChangesSince, type WorkspaceListing } from "./workspace-listing.js";

const SECRET = "sk-test-0123456789abcdefSECRET";
const folders = temporaryFolders("running-agent-changed-paths-test-");
const sessions: SandboxSession[] = [];

afterEach(async () => {
  for (const session of sessions.splice(0)) await session.destroy();
  await folders.removeAll();
});

/** What a session was asked to hand out: the whole tree, or which paths, and how many bytes came. */
interface Transfers {
  wholeTree: number;
  paths: string[];
  bytes: number;
  putArchive: number;
  putArchiveStream: number;
}

// Counts what crosses the session boundary; everything else goes to the real local sandbox.
function recording(session: SandboxSession): { session: SandboxSession; transfers: Transfers } {
  const transfers: Transfers = { wholeTree: 0, paths: [], bytes: 0, putArchive: 0, putArchiveStream: 0 };
  const recorded: SandboxSession = Object.create(session) as SandboxSession;
  Object.assign(recorded, {
    getArchive: async (directory: string) => {
      transfers.wholeTree += 1;
      const archive = await session.getArchive(directory);
      transfers.bytes += archive.byteLength;
      return archive;
    },
    getArchiveStream: async (directory: string, options: { paths?: readonly string[] } = {}) => {
      if (options.paths) transfers.paths.push(...options.paths);
      else transfers.wholeTree += 1;
      const stream = await session.getArchiveStream!(directory, options);
      return (async function* () {
        for await (const chunk of stream) {
          transfers.bytes += chunk.byteLength;
          yield chunk;
        }
      })();
    },
    putArchive: (directory: string, archive: Uint8Array) => {
      transfers.putArchive += 1;
      return session.putArchive(directory, archive);
    },
    putArchiveStream: (directory: string, archive: AsyncIterable<Uint8Array>) => {
      transfers.putArchiveStream += 1;
      return session.putArchiveStream!(directory, archive);
    },
  });
  return { session: recorded, transfers };
}

/** As the loop does it: a host clone without working tree, HEAD streamed in, the placed listing kept. */
async function placed(fixture: GitFixture, isolation: "none" | "bubblewrap" = "none") {
  const dir = await folders.create();
  await cloneRepository({ repository: { id: "fixture", remote: fixture.workPath, defaultBranch: "main", canPush: true }, branch: "main", depth: 1, dir, checkout: false });
  const real = await createLocalSandbox({ isolation }).create({ taskId: "changed-paths-test" });
  sessions.push(real);
  const { session, transfers } = recording(real);
  const listing = await placeRepository({ session, dir });
  expect(listing).toBeDefined();
  const agent = async (script: string) => {
    const result = await real.exec(["sh", "-ec", script]);
    expect(result.stderr).toBe("");
    expect(result.exitCode).toBe(0);
  };
  const collect = (extra: Partial<CollectChangesInput> = {}) => collectChanges({ session, dir, placed: listing as WorkspaceListing, ...extra });
  return { dir, session, real, transfers, agent, collect, listing: listing as WorkspaceListing };
}

describe("placing the repository", () => {
  let fixture: GitFixture;
  beforeAll(async () => {
    fixture = await createGitFixture({ files: { "README.md": "# r\n", "bin/run.sh": { content: "#!/bin/sh\n", executable: true }, "link": { symlink: "README.md" } } });
  });
  afterAll(() => fixture?.cleanup());

  it("streams HEAD in, keeps no working tree on the host, ships no hooks, and the sandbox's git sees a clean tree", async () => {
    const { dir, real, transfers } = await placed(fixture, "bubblewrap");
    // Streamed, never an archive in memory; `.git` and the files in one archive (one extraction).
    expect(transfers).toMatchObject({ putArchive: 0, putArchiveStream: 1 });
    // The host clone is .git only: no second copy of the files.
    expect(await readdir(dir)).toEqual([".git"]);
    const inside = await real.exec(["sh", "-c", "ls -A .git; echo ---; git status --porcelain; echo ---; test -x bin/run.sh && readlink link"]);
    const [gitEntries, status, modes] = inside.stdout.split("---\n");
    expect(gitEntries!.split("\n")).not.toContain("hooks");
    expect(status).toBe("");
    expect(modes!.trim()).toBe("README.md");
  });

  it("the placed listing reads the file system's own clock: a change made right after placing is collected even with this process's clock ten seconds ahead, and the clock's file is gone", async () => {
    // This process's clock ahead of the file system's (a clock set back since it started): a listing
    // stamped with it would take the agent's first changes for the placed state.
    const now = performance.now.bind(performance);
    const ahead = vi.spyOn(performance, "now").mockImplementation(() => now() + 10_000);
    let setup: Awaited<ReturnType<typeof placed>>;
    try {
      setup = await placed(fixture, "bubblewrap");
    } finally {
      ahead.mockRestore();
    }
    const { real, agent, collect, listing } = setup;
    expect(listing.fileClock).toBe(true);
    await agent("echo more >> README.md && echo new > added.txt");
    expect((await collect()).map((change) => [change.path, change.status])).toEqual([
      ["README.md", "modified"],
      ["added.txt", "added"],
    ]);
    expect((await real.exec(["ls", "-A", real.scratchDir])).stdout).toBe("");
  });
});

describe("collectChanges brings back only what changed", () => {
  let fixture: GitFixture;
  beforeAll(async () => {
    fixture = await createGitFixture({
      files: { ".gitignore": "build/\n" },
      generated: { count: 20_000, file: (index) => [`src/module-${index % 100}/file-${index}.ts`, `export const value${index} = ${index};\n`] },
    });
  });
  afterAll(() => fixture?.cleanup());

  it("a one-file change in a 20,000-file tree transfers that file only, and writes no file of the tree on the host", async () => {
    const { dir, transfers, agent, collect, listing } = await placed(fixture);
    await agent("echo '// edited' >> src/module-7/file-1207.ts && mkdir build && echo out > build/out.js");
    const changes = await collect();
    expect(changes.map((change) => [change.path, change.status])).toEqual([["src/module-7/file-1207.ts", "modified"]]);
    // Asked for by path, never the whole tree; a few KiB crossed, not the tree's megabytes.
    expect(transfers.wholeTree).toBe(0);
    // Files placed in the very tick of the placed listing are racy (ctime cannot tell for them): placement waits them
    // out only when there are more than a few (at most 64, 1 MiB), else they are asked for and compared by content.
    // Nothing else is asked for.
    const racy = [...listing.entries].filter(([path, entry]) => entry.type !== "directory" && isRacy(listing, path)).map(([path]) => path);
    expect(racy.length).toBeLessThanOrEqual(64);
    expect([...transfers.paths].sort()).toEqual([...new Set(["src/module-7/file-1207.ts", ...racy])].sort());
    expect(transfers.bytes).toBeLessThan(100 * 1024);
    // On the host: .git and the .gitignore check-ignore read for build/ (the changed file went straight into git's object store).
    expect((await readdir(dir)).sort()).toEqual([".git", ".gitignore"]);
    expect(await gitIn(dir, ["cat-file", "blob", ":src/module-7/file-1207.ts"])).toBe("export const value1207 = 1207;\n// edited\n");
  });
});

describe("collectChanges when the sandbox is hostile", () => {
  let fixture: GitFixture;
  beforeAll(async () => {
    fixture = await createGitFixture({ files: { "README.md": "# readme\n", "a.txt": "aaaa\n", "b.txt": "bbbb\n", "c.txt": "cccc\n" } });
  });
  afterAll(() => fixture?.cleanup());

  it("still collects changes hidden through the sandbox's .git: index flags, info/exclude, a commit made inside, a corrupt index", async () => {
    const { dir, agent, collect } = await placed(fixture);
    const configBefore = await readFile(join(dir, ".git", "config"), "utf8");
    await agent(`
      export GIT_AUTHOR_NAME=x GIT_AUTHOR_EMAIL=x@x GIT_COMMITTER_NAME=x GIT_COMMITTER_EMAIL=x@x
      echo hidden-by-flag >> a.txt && git update-index --assume-unchanged a.txt && git update-index --skip-worktree a.txt
      echo hidden-by-exclude > new.txt && echo new.txt >> .git/info/exclude
      echo committed-inside >> b.txt && git commit -qam inside
      printf '[core]\\n\\thooksPath = /tmp/evil\\n' >> .git/config
      test -z "$(git status --porcelain)"
      echo garbage > .git/index
    `);
    const changes = await collect();
    expect(changes.map((change) => [change.path, change.status])).toEqual([
      ["a.txt", "modified"],
      ["b.txt", "modified"],
      ["new.txt", "added"],
    ]);
    // Host git took nothing from the sandbox's .git.
    expect(await readFile(join(dir, ".git", "config"), "utf8")).toBe(configBefore);
    expect((await gitIn(dir, ["log", "--format=%s"])).trim().split("\n")).toHaveLength(1);
  });

  it("a second collect (after a fix round) drops what the first staged and the agent removed since", async () => {
    const { agent, collect } = await placed(fixture);
    await agent("echo first > added.txt && echo changed >> a.txt");
    expect((await collect()).map((change) => [change.path, change.status])).toEqual([
      ["a.txt", "modified"],
      ["added.txt", "added"],
    ]);
    await agent("rm added.txt && git checkout -- a.txt 2>/dev/null || printf 'aaaa\\n' > a.txt; echo again >> b.txt");
    expect((await collect()).map((change) => [change.path, change.status])).toEqual([["b.txt", "modified"]]);
  });

  it("a second collect given what the first staged (as the loop hands it) ends as one that asks git", async () => {
    const { agent, collect } = await placed(fixture);
    await agent("echo first > added.txt && echo changed >> a.txt && mv c.txt moved.txt");
    const first = await collect({ staged: [] });
    expect(first.map((change) => [change.path, change.status])).toEqual([
      ["a.txt", "modified"],
      ["added.txt", "added"],
      ["moved.txt", "renamed"],
    ]);
    await agent("rm added.txt && printf 'aaaa\\n' > a.txt && mv moved.txt c.txt && echo again >> b.txt");
    const staged = first.flatMap((change) => (change.previousPath === undefined ? [change.path] : [change.path, change.previousPath]));
    expect((await collect({ staged })).map((change) => [change.path, change.status])).toEqual([["b.txt", "modified"]]);
  });

  it("still collects files swapped between two folders, whose own status change times stay old", async () => {
    await using swap = await createGitFixture({ files: { "one/same.txt": "first\n", "two/same.txt": "second\n" } });
    const { agent, collect } = await placed(swap);
    // Renaming the folders sets their ctime, not their files': the files are simply not at their inode's placed path.
    await agent("mv one tmp && mv two one && mv tmp two");
    expect((await collect()).map((change) => [change.path, change.status])).toEqual([
      ["one/same.txt", "modified"],
      ["two/same.txt", "modified"],
    ]);
  });

  it("does not stage a file rewritten with its own bytes, and still stages a real change next to it", async () => {
    const { dir, transfers, agent, collect } = await placed(fixture);
    // A new inode and ctime, the same bytes: the listing must ask for it; git would find nothing to stage.
    await agent("cp a.txt .git/a-copy && rm a.txt && cp .git/a-copy a.txt && echo more >> b.txt");
    expect((await collect()).map((change) => [change.path, change.status])).toEqual([["b.txt", "modified"]]);
    expect(transfers.paths).toContain("a.txt");
    expect(await gitIn(dir, ["diff", "--cached", "--name-only", "HEAD"])).toBe("b.txt\n");
    expect(await gitIn(dir, ["cat-file", "blob", ":b.txt"])).toBe("bbbb\nmore\n");
  });

  it("still collects a same-size rewrite whose mtime was set back", async () => {
    const { agent, collect } = await placed(fixture);
    // Same size, and the old mtime put back: only the status change time (ctime) tells.
    await agent("touch -r c.txt .git/c-time && printf 'CCCC\\n' > c.txt && touch -r .git/c-time c.txt");
    const changes = await collect();
    expect(changes.map((change) => [change.path, change.status])).toEqual([["c.txt", "modified"]]);
  });
});

describe("collectChanges follows the folders that changed", () => {
  let fixture: GitFixture;
  beforeAll(async () => {
    fixture = await createGitFixture({
      files: { "top.txt": "top\n", "deep/a/x.txt": "x\n", "deep/a/y.txt": "y\n", "deep/a/inner/z.txt": "z\n", "deep/b/x.txt": "bx\n", "deep/b/inner/z.txt": "bz\n", "other/w.txt": "w\n" },
    });
  });
  afterAll(() => fixture?.cleanup());

  const collected = async (script: string) => {
    const { agent, collect, transfers, listing } = await placed(fixture);
    await agent(script);
    return { changes: (await collect()).map((change) => [change.path, change.status, ...(change.previousPath ? [change.previousPath] : [])]), transfers, listing };
  };
  // A tree this small is not waited out after placement (its racy entries are compared by content instead): besides
  // `expected`, only those may be asked for.
  const expectAsked = (transfers: { paths: string[] }, listing: WorkspaceListing, expected: string[]) => {
    expect(transfers.paths).toEqual(expect.arrayContaining(expected));
    expect(transfers.paths.filter((path) => !expected.includes(path) && !isRacy(listing, path))).toEqual([]);
  };

  it("lists through the folders that changed (no fallback to the full listing), and through the whole tree when a folder moved", async () => {
    const { real, agent, listing } = await placed(fixture);
    await agent("echo more >> deep/a/x.txt && rm deep/b/x.txt && echo n > new.txt");
    expect(await listChangesSince(real, listing)).toMatchObject({ changed: expect.arrayContaining(["deep/a/x.txt", "new.txt"]), removed: ["deep/b/x.txt"] });
    await agent("mv deep moved");
    const moved = await listChangesSince(real, listing);
    expect(moved?.removed).toContain("deep/a/inner/z.txt");
    expect(moved?.changed).toContain("moved/a/inner/z.txt");
  });

  it("a file removed from a folder whose own entry looks untouched, and one removed at the top", async () => {
    const { changes, transfers, listing } = await collected("rm deep/a/y.txt top.txt");
    expect(changes).toEqual([
      ["deep/a/y.txt", "deleted"],
      ["top.txt", "deleted"],
    ]);
    // Nothing was there to bring back.
    expectAsked(transfers, listing, []);
  });

  it("a folder renamed, with a folder inside it", async () => {
    expect((await collected("mv deep/a deep/c")).changes).toEqual([
      ["deep/c/inner/z.txt", "renamed", "deep/a/inner/z.txt"],
      ["deep/c/x.txt", "renamed", "deep/a/x.txt"],
      ["deep/c/y.txt", "renamed", "deep/a/y.txt"],
    ]);
  });

  it("a folder replaced by a new one of the same name", async () => {
    expect((await collected("mv deep/a .git/stash && mkdir deep/a && echo new > deep/a/x.txt")).changes).toEqual([
      ["deep/a/inner/z.txt", "deleted"],
      ["deep/a/x.txt", "modified"],
      ["deep/a/y.txt", "deleted"],
    ]);
  });

  it("folders with folders inside swapped (those inside keep their old ctime at another folder's path)", async () => {
    expect((await collected("mv deep/a deep/t && mv deep/b deep/a && mv deep/t deep/b && rm deep/b/y.txt")).changes).toEqual([
      ["deep/a/inner/z.txt", "modified"],
      ["deep/a/x.txt", "modified"],
      ["deep/a/y.txt", "deleted"],
      ["deep/b/inner/z.txt", "modified"],
      ["deep/b/x.txt", "modified"],
    ]);
  });

  it("folders moved out of the listed tree and back in at each other's path, with their old ctimes", async () => {
    // Through .git, which no listing descends into.
    expect((await collected("mv other .git/other && mv deep/b .git/b && mv .git/b other && mv .git/other deep/b")).changes).toEqual([
      ["deep/b/w.txt", "renamed", "other/w.txt"],
      ["other/inner/z.txt", "renamed", "deep/b/inner/z.txt"],
      ["other/x.txt", "renamed", "deep/b/x.txt"],
    ]);
  });

  it("a rename within a folder, and a file replaced by a symlink", async () => {
    const { changes } = await collected("mv deep/a/inner/z.txt deep/a/inner/moved.txt && rm deep/b/x.txt && ln -s ../../top.txt deep/b/x.txt");
    expect(changes).toEqual([
      ["deep/a/inner/moved.txt", "renamed", "deep/a/inner/z.txt"],
      ["deep/b/x.txt", "modified"],
    ]);
  });

  it("a hard link made to a placed file: both paths are asked for, the link comes as a file of its own and the placed one is unchanged", async () => {
    const { dir, agent, collect, transfers, listing } = await placed(fixture, "bubblewrap");
    await agent("ln deep/a/x.txt linked.txt");
    const changes = await collect();
    expect(changes.map((change) => [change.path, change.status])).toEqual([["linked.txt", "added"]]);
    expectAsked(transfers, listing, ["deep/a/x.txt", "linked.txt"]);
    expect(await gitIn(dir, ["cat-file", "blob", ":linked.txt"])).toBe(await gitIn(dir, ["cat-file", "blob", "HEAD:deep/a/x.txt"]));
  });

  it("a file added at the top and one in a new folder, next to a folder that was not touched", async () => {
    const { changes, transfers, listing } = await collected("echo n > new.txt && mkdir -p fresh/sub && echo f > fresh/sub/f.txt");
    expect(changes).toEqual([
      ["fresh/sub/f.txt", "added"],
      ["new.txt", "added"],
    ]);
    expectAsked(transfers, listing, ["fresh/sub/f.txt", "new.txt"]);
  });
});

describe("collectChanges stages the bytes git would", () => {
  it("applies the repository's .gitattributes as git add does (line endings normalized)", async () => {
    await using attributed = await createGitFixture({ files: { ".gitattributes": "*.txt text\n", "README.md": "# r\n" } });
    const { dir, agent, collect } = await placed(attributed);
    await agent("printf 'one\\r\\ntwo\\r\\n' > notes.txt");
    expect((await collect()).map((change) => [change.path, change.status])).toEqual([["notes.txt", "added"]]);
    expect(await gitIn(dir, ["cat-file", "blob", ":notes.txt"])).toBe("one\ntwo\n");
  });

  it("hashes the blobs as git does in a sha256 repository, with and without an index entry to learn the hash from", async () => {
    await using sha256 = await createGitFixture({ objectFormat: "sha256", files: { "README.md": "# r\n" } });
    const { dir, agent, collect } = await placed(sha256);
    await agent("echo new > added.txt");
    expect((await collect()).map((change) => [change.path, change.status])).toEqual([["added.txt", "added"]]);
    expect(await gitIn(dir, ["cat-file", "blob", ":added.txt"])).toBe("new\n");
    await agent("echo more >> README.md");
    expect((await collect()).map((change) => [change.path, change.status])).toEqual([
      ["README.md", "modified"],
      ["added.txt", "added"],
    ]);
    expect((await gitIn(dir, ["ls-files", "--stage", "README.md"])).split(" ")[1]).toHaveLength(64);
    expect(await gitIn(dir, ["cat-file", "blob", ":README.md"])).toBe("# r\nmore\n");
  });

  it("streams a file past the in-memory size into git whole, as git would hash it", async () => {
    await using small = await createGitFixture({ files: { "README.md": "# r\n" } });
    const { dir, real, agent, collect } = await placed(small);
    await agent("head -c 3145728 /dev/urandom > big.bin && ln -s big.bin big-link && chmod +x big.bin");
    expect((await collect()).map((change) => [change.path, change.status, change.mode])).toEqual([
      ["big-link", "added", "120000"],
      ["big.bin", "added", "100755"],
    ]);
    const expected = (await real.exec(["git", "hash-object", "big.bin"])).stdout.trim();
    expect((await gitIn(dir, ["ls-files", "--stage", "big.bin"])).split(" ").slice(0, 2)).toEqual(["100755", expected]);
  });

  it("a small change's blobs are loose objects, a larger one's past the first few go into a pack: git reads both whole and fsck finds nothing wrong", async () => {
    await using small = await createGitFixture({ files: { "README.md": "# r\n" } });
    const { dir, real, agent, collect } = await placed(small);
    const objectFiles = async () => (await gitIn(dir, ["count-objects", "-v"])).split("\n").filter((line) => /^(count|in-pack):/.test(line));
    const before = await objectFiles();
    await agent("echo one > one.txt && echo more >> README.md && ln -s one.txt one-link");
    expect((await collect()).map((change) => [change.path, change.status])).toEqual([
      ["README.md", "modified"],
      ["one-link", "added"],
      ["one.txt", "added"],
    ]);
    // Three loose objects more, no pack more.
    expect(await objectFiles()).toEqual([`count: ${Number(before[0]!.split(" ")[1]) + 3}`, before[1]]);
    expect(await gitIn(dir, ["cat-file", "blob", ":README.md"])).toBe("# r\nmore\n");
    expect(await gitIn(dir, ["cat-file", "blob", ":one-link"])).toBe("one.txt");
    // 40 files: the first 32 loose, the others and a file past the in-memory size through fast-import.
    await agent("mkdir many && for n in $(seq 1 40); do echo \"file $n\" > many/$n.txt; done && head -c 2097152 /dev/urandom > many/big.bin");
    const counted = await objectFiles();
    const changes = await collect();
    const count = (lines: string[], index: number) => Number(lines[index]!.split(" ")[1]);
    const after = await objectFiles();
    // fast-import unpacks a pack of fewer than 100 objects into loose ones itself: 41 objects more, either way.
    expect(count(after, 0) + count(after, 1) - count(counted, 0) - count(counted, 1)).toBe(41);
    expect(changes.filter((change) => change.path.startsWith("many/")).map((change) => change.status)).toEqual(Array<string>(41).fill("added"));
    for (const n of [1, 20, 40]) expect(await gitIn(dir, ["cat-file", "blob", `:many/${n}.txt`])).toBe(`file ${n}\n`);
    const expected = (await real.exec(["git", "hash-object", "many/big.bin"])).stdout.trim();
    expect((await gitIn(dir, ["ls-files", "--stage", "many/big.bin"])).split(" ")[1]).toBe(expected);
    expect(await gitIn(dir, ["fsck", "--no-dangling", "--cache"])).toBe("");
  });
});

describe("collectChanges limits and the secret scan", () => {
  let fixture: GitFixture;
  beforeAll(async () => {
    fixture = await createGitFixture({ files: { "README.md": "# readme\n" } });
  });
  afterAll(() => fixture?.cleanup());

  async function expectNothingStaged(dir: string) {
    expect(await gitIn(dir, ["diff", "--cached", "--name-only", "HEAD"])).toBe("");
  }

  it("fails with CHANGES_TOO_LARGE for a file over maxFileBytes, before reading it, and stages nothing", async () => {
    const { dir, transfers, agent, collect } = await placed(fixture);
    await agent("head -c 3145728 /dev/zero > big.bin && echo small > small.txt");
    const error = (await collect({ limits: { maxFileBytes: 1024 * 1024 } }).catch((caught: unknown) => caught)) as RunningAgentError;
    expect(RunningAgentError.isInstance(error)).toBe(true);
    expect(error.code).toBe(ErrorCode.CHANGES_TOO_LARGE);
    expect(error.message).toContain("big.bin");
    expect(error.details).toMatchObject({ limit: "maxFileBytes", path: "big.bin" });
    expect(transfers.bytes).toBeLessThan(64 * 1024);
    await expectNothingStaged(dir);
  });

  it("fails with CHANGES_TOO_LARGE past maxFiles and maxTotalBytes", async () => {
    const many = await placed(fixture);
    await many.agent("for i in 1 2 3 4; do echo $i > f$i.txt; done");
    expect(((await many.collect({ limits: { maxFiles: 3 } }).catch((caught: unknown) => caught)) as RunningAgentError).details).toMatchObject({ limit: "maxFiles" });
    await expectNothingStaged(many.dir);
    const total = await placed(fixture);
    await total.agent("head -c 600000 /dev/zero > a.bin && head -c 600000 /dev/zero > b.bin");
    expect(((await total.collect({ limits: { maxTotalBytes: 1_000_000 } }).catch((caught: unknown) => caught)) as RunningAgentError).details).toMatchObject({ limit: "maxTotalBytes" });
    await expectNothingStaged(total.dir);
  });

  const hiding: Array<[string, string]> = [
    ["a text file", `echo "key=${SECRET}" > out.txt`],
    // 65,530 bytes of zeros first: the secret straddles the 64 KiB chunks the stream comes in.
    ["a binary file, across a chunk boundary", `head -c 65530 /dev/zero > blob.bin && printf '${SECRET}' >> blob.bin && head -c 70000 /dev/zero >> blob.bin`],
    ["a symlink's target", `ln -s "/tmp/${SECRET}" pointer`],
  ];
  for (const [where, script] of hiding) {
    for (const mode of ["changed paths", "whole tree"] as const) {
      it(`fails with SECRET_IN_CHANGES for a secret in ${where} (${mode}), naming the file and never the secret`, async () => {
        const { dir, real, agent, collect } = await placed(fixture);
        await agent(script);
        // The whole-tree fallback: the same check on a host checkout and a session without a listing.
        const whole = async () => {
          const full = await folders.create();
          await cloneRepository({ repository: { id: "fixture", remote: fixture.workPath, defaultBranch: "main", canPush: true }, branch: "main", depth: 1, dir: full });
          const archiveOnly = { workdir: real.workdir, getArchive: (path: string) => real.getArchive(path) } as SandboxSession;
          return collectChanges({ session: archiveOnly, dir: full, secrets: [SECRET] });
        };
        const error = (await (mode === "whole tree" ? whole() : collect({ secrets: ["unrelated-secret-value", SECRET] })).catch((caught: unknown) => caught)) as RunningAgentError;
        expect(RunningAgentError.isInstance(error)).toBe(true);
        expect(error.code).toBe(ErrorCode.SECRET_IN_CHANGES);
        expect(error.phase).toBe("collect");
        expect(JSON.stringify({ message: error.message, details: error.details })).not.toContain(SECRET);
        expect(error.message).toMatch(/out\.txt|blob\.bin|pointer/);
        if (mode === "changed paths") await expectNothingStaged(dir);
      });
    }
  }

  it("finds nothing when no secret is in the change", async () => {
    const { collect, agent } = await placed(fixture);
    await agent(`echo "key=${SECRET.slice(0, -1)}" > out.txt`);
    expect((await collect({ secrets: [SECRET] })).map((change) => change.path)).toEqual(["out.txt"]);
  });
});
