import { lstat, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import * as tar from "tar-stream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { packDirectory } from "../archive.js";
import { RunningAgentError } from "../errors.js";
import { createLocalSandbox } from "../sandbox-local/local-sandbox.js";
import type { SandboxSession } from "../spec/sandbox-spec.js";
import { cloneRepository } from "./clone.js";
import type { ChangedFile } from "../changes.js";
import { collectChanges, type CollectChangesInput } from "./collect.js";
import { runGit } from "./git-command.js";
import { placeRepository } from "./place.js";
import type { WorkspaceListing } from "./workspace-listing.js";
import { createGitFixture, gitIn, temporaryFolders, type GitFixture } from "./git-fixture.js";

const files = {
  "README.md": "# Fixture\n\nline two\nline three\n",
  "src/index.ts": "export const answer = 42;\n",
  "src/old-name.ts": "export const moved = true;\n",
  "docs/remove-me.md": "bye\n",
  "bin/run.sh": { content: "#!/bin/sh\necho hi\n", executable: true as const },
  "scripts/tool.sh": "#!/bin/sh\necho tool\n",
  "link-to-readme": { symlink: "README.md" },
  "image.bin": new Uint8Array([0, 1, 2, 3, 255, 0, 7]),
  ".gitignore": "node_modules/\n*.log\n",
  "tracked.log": "tracked even though *.log is ignored\n",
};

let fixture: GitFixture;
let outside: string;
const folders = temporaryFolders("running-agent-collect-test-");
const sessions: SandboxSession[] = [];

beforeAll(async () => {
  // tracked.log is committed although the fixture's .gitignore ignores *.log.
  fixture = await createGitFixture({ files });
  outside = await mkdtemp(join(tmpdir(), "running-agent-outside-"));
  await writeFile(join(outside, "secret.txt"), "OUTSIDE-SECRET-CONTENT\n");
});

afterAll(async () => {
  await fixture?.cleanup();
  await rm(outside, { recursive: true, force: true });
});

afterEach(async () => {
  for (const session of sessions.splice(0)) await session.destroy();
  await folders.removeAll();
});

/**
 * How the repository reaches the sandbox and comes back: "whole tree" as before (a host checkout
 * packed in, every file brought back), "changed paths" as the loop does it (no host working tree,
 * HEAD streamed in, a listing taken after placing, only changed paths brought back).
 */
type Mode = "whole tree" | "changed paths";

/** Clones the fixture, puts it (with .git) into a real local sandbox, and runs a shell script there. */
async function agentRuns(script: string, mode: Mode = "whole tree"): Promise<{ dir: string; session: SandboxSession; collect: (extra?: Partial<CollectChangesInput>) => Promise<ChangedFile[]> }> {
  const dir = await folders.create();
  const repository = { id: "fixture", remote: fixture.workPath, defaultBranch: "main", canPush: true };
  await cloneRepository({ repository, branch: "main", depth: 1, dir, checkout: mode === "whole tree" });
  const session = await createLocalSandbox({ isolation: "none" }).create({ taskId: "collect-test" });
  sessions.push(session);
  let placed: WorkspaceListing | undefined;
  if (mode === "whole tree") await session.putArchive(session.workdir, await packDirectory(dir));
  else {
    placed = await placeRepository({ session, dir });
    expect(placed).toBeDefined();
  }
  if (script) {
    const result = await session.exec(["sh", "-ec", script], { env: { OUTSIDE: outside } });
    expect(result.stderr).toBe("");
    expect(result.exitCode).toBe(0);
  }
  return { dir, session, collect: (extra = {}) => collectChanges({ session, dir, ...(placed ? { placed } : {}), ...extra }) };
}

/** What the index (what gets committed) holds at `path`: its mode and bytes; undefined when nothing. */
async function staged(dir: string, path: string): Promise<{ mode: string; content: Buffer } | undefined> {
  const record = (await gitIn(dir, ["ls-files", "--stage", "--", path])).trim();
  if (record === "") return undefined;
  const { stdout } = await runGit(["cat-file", "blob", record.split(" ")[1]!], { cwd: dir });
  return { mode: record.slice(0, 6), content: stdout };
}

/** A session whose only ability is to hand out a prepared archive (for hostile archives no real sandbox would make). */
function archiveSession(archive: Uint8Array): SandboxSession {
  const unused = () => Promise.reject(new Error("not used by collectChanges"));
  return {
    id: "archive-only",
    workdir: "/workspace",
    scratchDir: "/scratch",
    isolated: true,
    getArchive: async () => archive,
    exec: unused,
    spawn: unused,
    readFile: unused,
    writeFile: unused,
    putArchive: unused,
    exposePort: unused,
    destroy: async () => undefined,
    [Symbol.asyncDispose]: async () => undefined,
  };
}

async function makeTar(entries: Array<tar.Headers & { content?: string | Buffer }>): Promise<Uint8Array> {
  const pack = tar.pack();
  for (const { content, ...header } of entries) pack.entry(header, content);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of Readable.from(pack)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe.each<Mode>(["whole tree", "changed paths"])("collectChanges from a real local sandbox (%s)", (mode) => {
  it("returns [] when nothing changed", async () => {
    const { dir, collect } = await agentRuns("", mode);
    expect(await collect()).toEqual([]);
    expect(await gitIn(dir, ["diff", "--cached", "--name-only", "HEAD"])).toBe("");
    if (mode === "whole tree") expect(await gitIn(dir, ["status", "--porcelain"])).toBe("");
  });

  it("stops with ABORTED before touching the host tree when the signal has fired", async () => {
    const { dir, collect } = await agentRuns("echo changed > README.md", mode);
    const controller = new AbortController();
    controller.abort();
    const error = (await collect({ signal: controller.signal }).catch((caught: unknown) => caught)) as RunningAgentError;
    expect(error.code).toBe("ABORTED");
    expect(error.phase).toBe("collect");
    if (mode === "whole tree") expect(await readFile(join(dir, "README.md"), "utf8")).toBe(files["README.md"]);
    else await expect(lstat(join(dir, "README.md"))).rejects.toThrow(/ENOENT/);
    expect(await gitIn(dir, ["diff", "--cached", "--name-only", "HEAD"])).toBe("");
  });

  it("reports added, modified, deleted and renamed files with line counts", async () => {
    const { dir, collect } = await agentRuns(`
      printf 'new\\nfile\\n' > src/added.ts
      printf '# Fixture\\n\\nline two changed\\nline three\\nline four\\n' > README.md
      rm docs/remove-me.md
      mv src/old-name.ts src/new-name.ts
    `, mode);
    const changes = await collect();
    expect(changes).toEqual([
      { path: "README.md", status: "modified", binary: false, additions: 2, deletions: 1, mode: "100644", previousMode: "100644" },
      { path: "docs/remove-me.md", status: "deleted", binary: false, additions: 0, deletions: 1, previousMode: "100644" },
      { path: "src/added.ts", status: "added", binary: false, additions: 2, deletions: 0, mode: "100644" },
      { path: "src/new-name.ts", status: "renamed", previousPath: "src/old-name.ts", binary: false, additions: 0, deletions: 0, mode: "100644", previousMode: "100644" },
    ]);
    // The index now equals the sandbox's tree (the host tree too in the whole-tree mode, which writes it).
    expect((await staged(dir, "src/added.ts"))?.content.toString()).toBe("new\nfile\n");
    expect(await staged(dir, "docs/remove-me.md")).toBeUndefined();
    expect(await staged(dir, "src/old-name.ts")).toBeUndefined();
    await expect(lstat(join(dir, "docs/remove-me.md"))).rejects.toThrow(/ENOENT/);
    await expect(lstat(join(dir, "src/old-name.ts"))).rejects.toThrow(/ENOENT/);
  });

  it("counts a rename with edits as a delete and an add (only exact renames are renames)", async () => {
    const { dir, collect } = await agentRuns(`mv src/old-name.ts src/edited.ts && echo more >> src/edited.ts`, mode);
    const changes = await collect();
    expect(changes.map((change) => [change.path, change.status])).toEqual([
      ["src/edited.ts", "added"],
      ["src/old-name.ts", "deleted"],
    ]);
  });

  it("flags binary content", async () => {
    const { dir, collect } = await agentRuns(`printf '\\000\\001\\002binary' > data.bin && printf '\\377\\000' >> image.bin`, mode);
    const changes = await collect();
    expect(changes).toEqual([
      { path: "data.bin", status: "added", binary: true, additions: 0, deletions: 0, mode: "100644" },
      { path: "image.bin", status: "modified", binary: true, additions: 0, deletions: 0, mode: "100644", previousMode: "100644" },
    ]);
    expect([...(await staged(dir, "data.bin"))!.content].slice(0, 3)).toEqual([0, 1, 2]);
  });

  it("reports executable bits set and unset, even without content changes", async () => {
    const { dir, collect } = await agentRuns(`chmod +x scripts/tool.sh && chmod -x bin/run.sh`, mode);
    const changes = await collect();
    expect(changes).toEqual([
      { path: "bin/run.sh", status: "modified", binary: false, additions: 0, deletions: 0, mode: "100644", previousMode: "100755" },
      { path: "scripts/tool.sh", status: "modified", binary: false, additions: 0, deletions: 0, mode: "100755", previousMode: "100644" },
    ]);
    expect((await staged(dir, "scripts/tool.sh"))?.mode).toBe("100755");
    expect((await staged(dir, "bin/run.sh"))?.mode).toBe("100644");
  });

  it("records symlinks inside the repository as links", async () => {
    const { dir, collect } = await agentRuns(`ln -s src/index.ts link-to-index && rm link-to-readme && ln -s src/index.ts link-to-readme`, mode);
    const changes = await collect();
    expect(changes).toEqual([
      { path: "link-to-index", status: "added", binary: false, additions: 1, deletions: 0, mode: "120000" },
      { path: "link-to-readme", status: "modified", binary: false, additions: 1, deletions: 1, mode: "120000", previousMode: "120000" },
    ]);
    expect(await staged(dir, "link-to-index")).toEqual({ mode: "120000", content: Buffer.from("src/index.ts") });
  });

  it("records a symlink pointing outside as a link and never reads what it points to", async () => {
    const { dir, collect } = await agentRuns(`ln -s "$OUTSIDE/secret.txt" escape && ln -s "$OUTSIDE" escape-dir && ln -sf "$OUTSIDE/secret.txt" README.md`, mode);
    const changes = await collect();
    expect(changes).toEqual([
      { path: "README.md", status: "modified", binary: false, additions: 1, deletions: 4, mode: "120000", previousMode: "100644" },
      { path: "escape", status: "added", binary: false, additions: 1, deletions: 0, mode: "120000" },
      { path: "escape-dir", status: "added", binary: false, additions: 1, deletions: 0, mode: "120000" },
    ]);
    expect((await staged(dir, "escape"))?.mode).toBe("120000");
    // What git stored is the link's target path, not the secret behind it.
    expect(await gitIn(dir, ["cat-file", "blob", ":escape"])).toBe(join(outside, "secret.txt"));
    expect(await gitIn(dir, ["cat-file", "blob", ":README.md"])).toBe(join(outside, "secret.txt"));
    expect(await readFile(join(outside, "secret.txt"), "utf8")).toBe("OUTSIDE-SECRET-CONTENT\n");
  });

  it("ignores the sandbox's .git and what .gitignore ignores, but keeps tracked files", async () => {
    const { dir, collect } = await agentRuns(`
      echo '[core]\n\thooksPath = /tmp/evil' >> .git/config
      mkdir -p .git/hooks && echo 'evil' > .git/hooks/pre-commit
      mkdir -p node_modules/pkg src/.git && echo 'module.exports = 1' > node_modules/pkg/index.js
      echo nested > src/.git/config
      echo 'log line' > debug.log
      echo 'still tracked' >> tracked.log
    `, mode);
    const changes = await collect();
    expect(changes.map((change) => change.path)).toEqual(["tracked.log"]);
    expect(await readFile(join(dir, ".git/config"), "utf8")).not.toContain("/tmp/evil");
    await expect(lstat(join(dir, ".git/hooks/pre-commit"))).rejects.toThrow(/ENOENT/);
    // Ignored files are not even written back to the host.
    await expect(lstat(join(dir, "node_modules"))).rejects.toThrow(/ENOENT/);
    await expect(lstat(join(dir, "debug.log"))).rejects.toThrow(/ENOENT/);
  });

  it("follows the sandbox's edited .gitignore, as git would", async () => {
    const { dir, collect } = await agentRuns(`printf 'build/\\n' > .gitignore && mkdir build && echo x > build/out.js && echo y > debug.log`, mode);
    const changes = await collect();
    expect(changes.map((change) => [change.path, change.status])).toEqual([
      [".gitignore", "modified"],
      ["debug.log", "added"],
    ]);
  });
});

describe.each<Mode>(["whole tree", "changed paths"])("collectChanges with a submodule (%s)", (mode) => {
  it("keeps the (uncloned) submodule and ignores files the sandbox put inside it", async () => {
    const library = await createGitFixture({ files: { "lib.txt": "lib\n" } });
    const parent = await createGitFixture({ files: { "README.md": "parent\n" } });
    try {
      await gitIn(parent.workPath, ["-c", "protocol.file.allow=always", "submodule", "add", "--quiet", library.workPath, "vendor/lib"]);
      await gitIn(parent.workPath, ["commit", "--quiet", "-m", "Add submodule"]);
      const dir = await folders.create();
      await cloneRepository({ repository: { id: "parent", remote: parent.workPath, defaultBranch: "main", canPush: true }, branch: "main", depth: 1, dir, checkout: mode === "whole tree" });
      const session = await createLocalSandbox({ isolation: "none" }).create({ taskId: "collect-submodule" });
      sessions.push(session);
      let placed: WorkspaceListing | undefined;
      if (mode === "whole tree") await session.putArchive(session.workdir, await packDirectory(dir));
      else placed = await placeRepository({ session, dir });
      await session.exec(["sh", "-ec", "echo planted > vendor/lib/planted.txt && echo changed > README.md"]);
      const changes = await collectChanges({ session, dir, ...(placed ? { placed } : {}) });
      expect(changes.map((change) => [change.path, change.status])).toEqual([["README.md", "modified"]]);
      await expect(lstat(join(dir, "vendor/lib/planted.txt"))).rejects.toThrow(/ENOENT/);
    } finally {
      await library.cleanup();
      await parent.cleanup();
    }
  });
});

describe("collectChanges with hostile archives", () => {
  async function hostClone(): Promise<string> {
    const dir = await folders.create();
    await cloneRepository({ repository: { id: "fixture", remote: fixture.workPath, defaultBranch: "main", canPush: true }, branch: "main", depth: 1, dir });
    return dir;
  }

  it("refuses a path that escapes through a symlinked folder, and writes nothing outside", async () => {
    const dir = await hostClone();
    const archive = await makeTar([
      { name: "README.md", type: "file", mode: 0o644, content: "# Fixture\n\nline two\nline three\n" },
      { name: "sneaky", type: "symlink", linkname: outside },
      { name: "sneaky/planted.txt", type: "file", mode: 0o644, content: "planted" },
    ]);
    const error = await collectChanges({ session: archiveSession(archive), dir }).catch((caught: unknown) => caught);
    expect(RunningAgentError.isInstance(error)).toBe(true);
    expect((error as RunningAgentError).code).toBe("UNSAFE_PATH");
    expect((error as RunningAgentError).phase).toBe("collect");
    await expect(lstat(join(outside, "planted.txt"))).rejects.toThrow(/ENOENT/);
  });

  it("refuses .. and absolute paths", async () => {
    for (const name of ["../escaped.txt", "/tmp/absolute.txt", "src/../../escaped.txt"]) {
      const dir = await hostClone();
      const archive = await makeTar([{ name, type: "file", mode: 0o644, content: "x" }]);
      const error = (await collectChanges({ session: archiveSession(archive), dir }).catch((caught: unknown) => caught)) as RunningAgentError;
      expect(error.code).toBe("UNSAFE_PATH");
    }
    await expect(lstat(join(tmpdir(), "escaped.txt"))).rejects.toThrow(/ENOENT/);
  });

  it("skips .git entries in any letter case", async () => {
    const dir = await hostClone();
    const configBefore = await readFile(join(dir, ".git/config"), "utf8");
    const entries = (await gitIn(dir, ["ls-files", "-s"])).trim().split("\n");
    expect(entries.length).toBeGreaterThan(3);
    // An archive equal to HEAD's tree plus .git payloads: nothing may change.
    const tree = await packDirectory(dir, { exclude: (path) => path === ".git" });
    const extra = await makeTar([
      { name: ".git/config", type: "file", mode: 0o644, content: "[core]\n\thooksPath = /tmp/evil\n" },
      { name: ".GIT/hooks/post-commit", type: "file", mode: 0o755, content: "#!/bin/sh\n" },
      { name: "sub/.Git/config", type: "file", mode: 0o644, content: "x" },
    ]);
    const combined = await concatenateTars(tree, extra);
    expect(await collectChanges({ session: archiveSession(combined), dir })).toEqual([]);
    expect(await readFile(join(dir, ".git/config"), "utf8")).toBe(configBefore);
    await expect(lstat(join(dir, ".GIT"))).rejects.toThrow(/ENOENT/);
  });

  it("refuses hard links", async () => {
    const dir = await hostClone();
    const archive = await makeTar([{ name: "hard", type: "link", linkname: "/etc/passwd" }]);
    const error = (await collectChanges({ session: archiveSession(archive), dir }).catch((caught: unknown) => caught)) as RunningAgentError;
    expect(error.code).toBe("UNSAFE_PATH");
  });
});

// Re-packs the entries of two archives into one.
async function concatenateTars(first: Uint8Array, second: Uint8Array): Promise<Uint8Array> {
  const { readArchive } = await import("../archive.js");
  const entries = [...(await readArchive(first)), ...(await readArchive(second))];
  return makeTar(
    entries.map((entry) =>
      entry.type === "file"
        ? { name: entry.path, type: "file" as const, mode: entry.mode, content: Buffer.from(entry.content ?? new Uint8Array()) }
        : entry.type === "symlink"
          ? { name: entry.path, type: "symlink" as const, linkname: entry.linkTarget ?? "" }
          : { name: entry.path, type: "directory" as const, mode: entry.mode },
    ),
  );
}
