import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** A repository made for a test or a demo. */
export interface TestRepository extends AsyncDisposable {
  /** The bare repository's path: pass it as `repo`. */
  path: string;
  /** The folder holding it; removed by {@link TestRepository.remove}. */
  root: string;
  /** Runs git against the bare repository and returns stdout. */
  git(...args: string[]): Promise<string>;
  /**
   * Commits `files` (added or replaced, `null` removed; the others stay) on `branch` (default: the one
   * it was made with), as a push to it would: the base branch moves. Resolves with the new commit.
   */
  commit(files: Record<string, string | null>, options?: { branch?: string; message?: string }): Promise<string>;
  /** Removes {@link TestRepository.root} and everything in it. */
  remove(): Promise<void>;
}

/**
 * Creates a bare repository whose `branch` (default `main`) holds one commit of `files`.
 * Uses the git CLI with a fixed identity, so the machine's git config does not matter.
 */
export async function createTestRepository(
  files: Record<string, string | { content: string; executable?: boolean }>,
  options: { branch?: string; parent?: string; name?: string } = {},
): Promise<TestRepository> {
  const branch = options.branch ?? "main";
  const root = await mkdtemp(join(options.parent ?? tmpdir(), "running-agent-test-repo-"));
  const work = join(root, "work");
  const path = join(root, options.name ?? "repo.git");
  const gitWith = (env: Record<string, string>, cwd: string, ...args: string[]) =>
    run("git", ["-c", "user.name=Test", "-c", "user.email=test@example.invalid", "-c", `init.defaultBranch=${branch}`, "-c", "core.hooksPath=/dev/null", ...args], {
      cwd,
      env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null", ...env },
    });
  const git = (cwd: string, ...args: string[]) => gitWith({}, cwd, ...args);
  try {
    await mkdir(work, { recursive: true });
    for (const [file, value] of Object.entries(files)) {
      const target = join(work, file);
      await mkdir(dirname(target), { recursive: true });
      const entry = typeof value === "string" ? { content: value } : value;
      await writeFile(target, entry.content, { mode: entry.executable ? 0o755 : 0o644 });
    }
    await git(work, "init", "-q");
    await git(work, "add", "-A");
    await git(work, "commit", "-q", "-m", "Initial commit");
    await git(root, "clone", "-q", "--bare", work, path);
    await rm(work, { recursive: true, force: true });
  } catch (error) {
    await rm(root, { recursive: true, force: true });
    throw error;
  }
  const remove = () => rm(root, { recursive: true, force: true });
  // With git's plumbing on a private index: no work tree, and the bare repository's own index untouched.
  const commit = async (changed: Record<string, string | null>, commitOptions: { branch?: string; message?: string } = {}) => {
    const target = commitOptions.branch ?? branch;
    const scratch = await mkdtemp(join(root, "commit-"));
    const inRepository = (...args: string[]) => gitWith({ GIT_INDEX_FILE: join(scratch, "index") }, root, "--git-dir", path, ...args);
    try {
      const parent = (await inRepository("rev-parse", "--verify", `refs/heads/${target}`)).stdout.trim();
      await inRepository("read-tree", parent);
      for (const [file, content] of Object.entries(changed)) {
        if (content === null) {
          // A work tree, any: update-index wants one to remove an entry.
          await inRepository("--work-tree", scratch, "update-index", "--force-remove", "--", file);
          continue;
        }
        await writeFile(join(scratch, "blob"), content);
        const blob = (await inRepository("hash-object", "-w", join(scratch, "blob"))).stdout.trim();
        await inRepository("update-index", "--add", "--cacheinfo", `100644,${blob},${file}`);
      }
      const tree = (await inRepository("write-tree")).stdout.trim();
      const created = (await inRepository("commit-tree", tree, "-p", parent, "-m", commitOptions.message ?? "Change")).stdout.trim();
      await inRepository("update-ref", `refs/heads/${target}`, created, parent);
      return created;
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  };
  return {
    path,
    root,
    git: async (...args: string[]) => (await git(root, "--git-dir", path, ...args)).stdout,
    commit,
    remove,
    [Symbol.asyncDispose]: remove,
  };
}
