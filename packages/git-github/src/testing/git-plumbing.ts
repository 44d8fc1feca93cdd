import { execFile } from "node:child_process";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";

/**
 * The environment git runs with in the local server: no GIT_* variable from the caller, no
 * system or user config, never a prompt, C locale. Holds no secret.
 */
export function serverGitEnvironment(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith("GIT_")) env[key] = value;
  }
  return { ...env, GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null", GIT_TERMINAL_PROMPT: "0", LC_ALL: "C", ...extra };
}

/** Runs git in a bare repository and returns stdout; rejects with git's stderr on a non-zero exit. */
export function git(gitDir: string, args: string[], options: { input?: string | Buffer; env?: Record<string, string> } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile("git", ["--git-dir", gitDir, ...args], { env: serverGitEnvironment(options.env), maxBuffer: 64 * 1024 * 1024, encoding: "buffer" }, (error, stdout, stderr) => {
      if (error) reject(new Error(`git ${args[0]} failed: ${stderr.toString().trim() || error.message}`));
      else resolve(stdout.toString());
    });
    // Commands that do not read stdin may exit before it is written; that is not an error.
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(options.input ?? "");
  });
}

/** A file the server writes in a commit (`createRepository` and `commit` take them by path): text, bytes, or either with a mode; `null` deletes. */
export type FileContent =
  | string
  | Uint8Array
  | {
      /** The file's text (written as UTF-8) or bytes. */
      content: string | Uint8Array;
      /** The git file mode: `100644` a regular file (default), `100755` an executable. */
      mode?: "100644" | "100755";
    }
  | null;

/** Who made a commit. */
export interface CommitIdentity {
  /** The person's name, as in `git log`. */
  name: string;
  /** The person's email address. */
  email: string;
}

/** Creates an empty bare repository whose HEAD names `defaultBranch`. */
export async function initBareRepository(path: string, defaultBranch: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    execFile("git", ["init", "--quiet", "--bare", `--initial-branch=${defaultBranch}`, path], { env: serverGitEnvironment() }, (error, _stdout, stderr) =>
      error ? reject(new Error(`git init failed: ${stderr}`)) : resolve(),
    );
  });
}

/**
 * Commits files onto a branch of a bare repository without a work tree (hash-object,
 * update-index on a temporary index, write-tree, commit-tree), as if someone had pushed.
 * Returns the new commit's sha.
 */
export async function commitFiles(gitDir: string, branch: string, files: Record<string, FileContent>, message: string, author: CommitIdentity, startPoint?: string): Promise<string> {
  const indexFile = join(tmpdir(), `github-server-index-${randomUUID()}`);
  const env = { GIT_INDEX_FILE: indexFile };
  try {
    const current = await revParse(gitDir, `refs/heads/${branch}`);
    // A new branch starts from the start point (like a push of a branch made from it).
    const parent = current ?? (startPoint ? await revParse(gitDir, startPoint) : undefined);
    if (parent) await git(gitDir, ["read-tree", parent], { env });
    for (const [path, file] of Object.entries(files)) {
      if (file === null) {
        await git(gitDir, ["update-index", "--force-remove", "--", path], { env });
        continue;
      }
      const { content, mode } = typeof file === "string" || file instanceof Uint8Array ? { content: file, mode: "100644" } : { content: file.content, mode: file.mode ?? "100644" };
      const blob = (await git(gitDir, ["hash-object", "-w", "--stdin"], { input: typeof content === "string" ? content : Buffer.from(content) })).trim();
      await git(gitDir, ["update-index", "--add", "--cacheinfo", `${mode},${blob},${path}`], { env });
    }
    const tree = (await git(gitDir, ["write-tree"], { env })).trim();
    const identity = {
      GIT_AUTHOR_NAME: author.name,
      GIT_AUTHOR_EMAIL: author.email,
      GIT_COMMITTER_NAME: author.name,
      GIT_COMMITTER_EMAIL: author.email,
    };
    const commit = (await git(gitDir, ["commit-tree", tree, ...(parent ? ["-p", parent] : []), "-m", message], { env: identity })).trim();
    // Compare-and-swap: fails when the branch moved meanwhile, like a rejected push.
    await git(gitDir, ["update-ref", `refs/heads/${branch}`, commit, current ?? ""]);
    return commit;
  } finally {
    await rm(indexFile, { force: true });
  }
}

/** The sha a ref points at, or undefined when it does not exist. */
export async function revParse(gitDir: string, ref: string): Promise<string | undefined> {
  try {
    return (await git(gitDir, ["rev-parse", "--verify", "--quiet", `${ref}^{commit}`])).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Every branch and the sha it points at. */
export async function listBranches(gitDir: string): Promise<Array<{ name: string; sha: string }>> {
  const output = await git(gitDir, ["for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/"]);
  return output
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const space = line.indexOf(" ");
      return { sha: line.slice(0, space), name: line.slice(space + 1).replace(/^refs\/heads\//, "") };
    });
}

/** The facts of one commit that GitHub's JSON shows. */
export interface CommitFacts {
  sha: string;
  tree: string;
  parents: string[];
  author: CommitIdentity & { date: string };
  committer: CommitIdentity & { date: string };
  message: string;
}

/** Reads a commit's tree, parents, identities and message. */
export async function readCommit(gitDir: string, sha: string): Promise<CommitFacts> {
  const output = await git(gitDir, ["show", "-s", "--format=%H%x00%T%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B", sha]);
  const [hash, tree, parents, authorName, authorEmail, authorDate, committerName, committerEmail, committerDate, message] = output.split("\0");
  return {
    sha: hash!,
    tree: tree!,
    parents: parents ? parents.split(" ").filter(Boolean) : [],
    author: { name: authorName!, email: authorEmail!, date: toUtc(authorDate!) },
    committer: { name: committerName!, email: committerEmail!, date: toUtc(committerDate!) },
    message: (message ?? "").replace(/\n+$/, ""),
  };
}

/** Commits on `head` not on `base`, and the line counts of the three-dot diff. */
export async function compareBranches(gitDir: string, base: string, head: string): Promise<{ commits: number; additions: number; deletions: number; changedFiles: number }> {
  const commits = Number((await git(gitDir, ["rev-list", "--count", `${base}..${head}`])).trim());
  const hasMergeBase = await git(gitDir, ["merge-base", base, head]).then(
    () => true,
    () => false,
  );
  // Unrelated histories have no three-dot diff; GitHub would refuse the pull request, the counts only need to be sane.
  const numstat = await git(gitDir, ["diff", "--numstat", hasMergeBase ? `${base}...${head}` : `${base}..${head}`]);
  let additions = 0;
  let deletions = 0;
  let changedFiles = 0;
  for (const line of numstat.split("\n").filter(Boolean)) {
    const [added, deleted] = line.split("\t");
    changedFiles += 1;
    additions += Number(added) || 0;
    deletions += Number(deleted) || 0;
  }
  return { commits, additions, deletions, changedFiles };
}

/** A file's bytes at a ref, or undefined when it is not there. */
export async function readFileAt(gitDir: string, ref: string, path: string): Promise<string | undefined> {
  try {
    return await git(gitDir, ["show", `${ref}:${path}`]);
  } catch {
    return undefined;
  }
}

/** Every file path in a ref's tree. */
export async function listFilesAt(gitDir: string, ref: string): Promise<string[]> {
  return (await git(gitDir, ["ls-tree", "-r", "--name-only", "-z", ref])).split("\0").filter(Boolean);
}

function toUtc(isoDate: string): string {
  return new Date(isoDate).toISOString().replace(/\.\d{3}Z$/, "Z");
}
