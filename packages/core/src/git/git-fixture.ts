import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { runGit } from "./git-command.js";

/** A file in a {@link createGitFixture} tree: text, bytes, an executable, or a symlink. */
export type FixtureFile = string | Uint8Array | { content: string | Uint8Array; executable: true } | { symlink: string };

/** Options for {@link createGitFixture}. */
export interface GitFixtureOptions {
  files?: Record<string, FixtureFile>;
  /** Default branch. Default `main`. */
  branch?: string;
  /** The repository's hash. Default sha1. */
  objectFormat?: "sha1" | "sha256";
  /** Also make a bare copy, as a server would hold it. */
  bare?: boolean;
  /** Commits to make before the one with `files` (for history depth). Default 0. */
  earlierCommits?: number;
  /**
   * Many files, committed on top of `files` straight into the object store (git fast-import: seconds
   * for 20,000 files, where writing them first takes a minute). The work tree does not get them.
   */
  generated?: { count: number; file: (index: number) => [path: string, content: string] };
}

/** A repository made for a test, removed by `cleanup`. */
export interface GitFixture extends AsyncDisposable {
  /** The folder holding everything: `work/` and, with `bare`, `repo.git`. */
  root: string;
  /** The repository with a working tree. */
  workPath: string;
  /** The bare copy, when asked for. */
  barePath: string;
  /** The branch's commit. */
  commit: string;
  cleanup(): Promise<void>;
}

/** The identity test commits are made with. */
export const TEST_IDENTITY = { name: "Fixture Author", email: "fixture@example.test" };

/** Runs git in a repository as the fixture identity. For tests. */
export async function gitIn(dir: string, args: string[], input?: string): Promise<string> {
  const { stdout } = await runGit(args, {
    cwd: dir,
    ...(input !== undefined ? { input } : {}),
    env: {
      GIT_AUTHOR_NAME: TEST_IDENTITY.name,
      GIT_AUTHOR_EMAIL: TEST_IDENTITY.email,
      GIT_COMMITTER_NAME: TEST_IDENTITY.name,
      GIT_COMMITTER_EMAIL: TEST_IDENTITY.email,
    },
  });
  return stdout.toString("utf8");
}

/** Writes files into a folder (creating parents); symlinks as links. */
export async function writeFixtureFiles(dir: string, files: Record<string, FixtureFile>): Promise<void> {
  for (const [path, file] of Object.entries(files)) {
    const hostPath = join(dir, path);
    await mkdir(dirname(hostPath), { recursive: true });
    await rm(hostPath, { force: true, recursive: true });
    if (typeof file === "object" && "symlink" in file) {
      await symlink(file.symlink, hostPath);
    } else if (typeof file === "object" && "executable" in file) {
      await writeFile(hostPath, file.content);
      await chmod(hostPath, 0o755);
    } else {
      await writeFile(hostPath, file);
      await chmod(hostPath, 0o644);
    }
  }
}

/** Makes a git repository with the given files committed on one branch (and a bare copy). For tests. */
export async function createGitFixture(options: GitFixtureOptions = {}): Promise<GitFixture> {
  const root = await mkdtemp(join(tmpdir(), "running-agent-git-test-"));
  const workPath = join(root, "work");
  const barePath = join(root, "repo.git");
  const branch = options.branch ?? "main";
  try {
    await mkdir(workPath);
    await gitIn(workPath, ["init", "--quiet", `--initial-branch=${branch}`, `--object-format=${options.objectFormat ?? "sha1"}`]);
    for (let index = 0; index < (options.earlierCommits ?? 0); index++) {
      await writeFixtureFiles(workPath, { "HISTORY.md": `commit ${index}\n` });
      await gitIn(workPath, ["add", "--all"]);
      await gitIn(workPath, ["commit", "--quiet", "-m", `Earlier commit ${index}`]);
    }
    await writeFixtureFiles(workPath, options.files ?? { "README.md": "# Fixture\n" });
    // Everything given is committed, even what the fixture's own .gitignore ignores.
    await gitIn(workPath, ["add", "--all", "--force"]);
    await gitIn(workPath, ["commit", "--quiet", "--allow-empty", "-m", "Fixture commit"]);
    if (options.generated) await commitGenerated(workPath, branch, options.generated);
    if (options.bare) await gitIn(root, ["clone", "--quiet", "--bare", "--no-hardlinks", "--", workPath, barePath]);
    const commit = (await gitIn(workPath, ["rev-parse", "HEAD"])).trim();
    const cleanup = () => rm(root, { recursive: true, force: true });
    return { root, workPath, barePath, commit, cleanup, [Symbol.asyncDispose]: cleanup };
  } catch (error) {
    await rm(root, { recursive: true, force: true });
    throw error;
  }
}

async function commitGenerated(workPath: string, branch: string, generated: NonNullable<GitFixtureOptions["generated"]>): Promise<void> {
  const data = (text: string) => `data ${Buffer.byteLength(text)}\n${text}`;
  const lines = [`commit refs/heads/${branch}`, `committer ${TEST_IDENTITY.name} <${TEST_IDENTITY.email}> 1700000000 +0000`, data(`${generated.count} generated files`), `from refs/heads/${branch}^0`];
  for (let index = 0; index < generated.count; index++) {
    const [path, content] = generated.file(index);
    lines.push(`M 100644 inline ${path}`, data(content));
  }
  await runGit(["fast-import", "--quiet"], { cwd: workPath, input: `${lines.join("\n")}\n` });
  // The work tree's index follows, so that the fixture's own status stays clean of these files.
  await runGit(["reset", "--quiet", "--soft", branch], { cwd: workPath });
}

/** The temporary folders one test file makes; `removeAll` (in `afterEach`) deletes them. */
export interface TemporaryFolders {
  /** Makes a new empty folder in the system's temporary folder. */
  create(): Promise<string>;
  /** Deletes every folder made so far. */
  removeAll(): Promise<void>;
}

/** Tracks the temporary folders a test file makes, each named `<prefix><random>`. */
export function temporaryFolders(prefix: string): TemporaryFolders {
  const made: string[] = [];
  return {
    async create() {
      const dir = await mkdtemp(join(tmpdir(), prefix));
      made.push(dir);
      return dir;
    },
    async removeAll() {
      for (const dir of made.splice(0)) await rm(dir, { recursive: true, force: true });
    },
  };
}
