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
  const git = (cwd: string, ...args: string[]) =>
    run("git", ["-c", "user.name=Test", "-c", "user.email=test@example.invalid", "-c", `init.defaultBranch=${branch}`, "-c", "core.hooksPath=/dev/null", ...args], {
      cwd,
      env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" },
    });
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
  return {
    path,
    root,
    git: async (...args: string[]) => (await git(root, "--git-dir", path, ...args)).stdout,
    remove,
    [Symbol.asyncDispose]: remove,
  };
}
