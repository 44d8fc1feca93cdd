import { execFile, spawn } from "node:child_process";
import { PassThrough, type Readable } from "node:stream";
import { abortedError } from "../errors.js";
import type { Phase } from "../phases.js";
import { signalProcessTree } from "../process-tree.js";

/** What {@link runGit} returns for a command that exited with 0. */
export interface GitCommandResult {
  stdout: Buffer;
  stderr: string;
}

/** A git command that exited non-zero; {@link GitCommandFailure.stderr} says why. */
export class GitCommandFailure extends Error {
  override readonly name = "GitCommandFailure";
  constructor(
    readonly args: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    readonly stdout: string = "",
  ) {
    super(`git ${args[0] ?? ""} exited with ${exitCode ?? "a signal"}: ${stderr.trim().split("\n").slice(-3).join(" ")}`);
  }
}

/** Options for {@link runGit}. */
export interface GitCommandOptions {
  /** Working directory (the repository). */
  cwd?: string;
  /** Bytes for stdin. */
  input?: string | Uint8Array;
  /** Extra environment (identities); never secrets. */
  env?: Record<string, string>;
  signal?: AbortSignal;
  /** The loop phase, for the abort error. */
  phase?: Phase;
  /**
   * Run git in a process group of its own, and end the whole group when the signal fires: a push
   * whose remote helper outlived a killed `git push` could still move the remote branch.
   */
  ownProcessGroup?: boolean;
}

const MAX_OUTPUT_BYTES = 512 * 1024 * 1024;

/**
 * The environment every git command runs with: the caller's environment without any GIT_*
 * variable (a caller running inside a git hook must not redirect us to another repository),
 * no system or user config (results must not depend on the machine), never a prompt, and
 * C locale so that messages can be matched.
 */
export function gitEnvironment(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith("GIT_")) env[key] = value;
  }
  return {
    ...env,
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_TERMINAL_PROMPT: "0",
    GIT_ASKPASS: "/bin/false",
    SSH_ASKPASS: "/bin/false",
    LC_ALL: "C",
    LANGUAGE: "C",
    ...extra,
  };
}

/**
 * Runs `git` with an argument vector (never a shell string). Rejects with
 * {@link GitCommandFailure} on a non-zero exit, and with the typed ABORTED error when the
 * signal fires (the process is killed).
 */
export function runGit(args: readonly string[], options: GitCommandOptions = {}): Promise<GitCommandResult> {
  if (options.ownProcessGroup) {
    if (options.signal?.aborted) return Promise.reject(abortedError(options.signal, options.phase));
    return runGitInOwnGroup(args, options);
  }
  return runFile("git", args, args, options);
}

/**
 * Runs a fixed `sh` script (never one built from input: what varies goes in `args`, `$1`...) whose
 * commands are git's, in git's environment: several git steps for the cost of one process started
 * from here (a fork of this large process costs more than git's own run of a small step). Failures
 * as {@link runGit}'s, named by `command`.
 */
export function runGitScript(command: readonly string[], script: string, args: readonly string[], options: Omit<GitCommandOptions, "ownProcessGroup"> = {}): Promise<GitCommandResult> {
  return runFile("sh", ["-c", script, "sh", ...args], command, options);
}

function runFile(file: string, argv: readonly string[], args: readonly string[], options: GitCommandOptions): Promise<GitCommandResult> {
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(abortedError(signal, options.phase));
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      argv,
      {
        cwd: options.cwd,
        env: gitEnvironment(options.env),
        encoding: "buffer",
        maxBuffer: MAX_OUTPUT_BYTES,
        ...(signal ? { signal } : {}),
      },
      (error, stdout, stderr) => {
        if (signal?.aborted) return reject(abortedError(signal, options.phase));
        const stderrText = stderr.toString("utf8");
        if (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (typeof code === "string") return reject(new GitCommandFailure(args, null, startFailure(code, options.cwd)));
          const exitCode = typeof (error as { code?: unknown }).code === "number" ? ((error as { code: number }).code) : null;
          return reject(new GitCommandFailure(args, exitCode, stderrText, stdout.toString("utf8")));
        }
        resolve({ stdout, stderr: stderrText });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

function startFailure(code: string, cwd: string | undefined): string {
  return code === "ENOENT" ? `git could not be started: it is not on PATH${cwd ? `, or ${cwd} does not exist` : ""}` : `git failed (${code})`;
}

// runGit for `ownProcessGroup` (execFile cannot start a process group): the signal ends the group.
function runGitInOwnGroup(args: readonly string[], options: GitCommandOptions): Promise<GitCommandResult> {
  const { signal } = options;
  return new Promise((resolve, reject) => {
    const child = spawn("git", args, { cwd: options.cwd, env: gitEnvironment(options.env), stdio: ["pipe", "pipe", "pipe"], detached: true });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let bytes = 0;
    const take = (into: Buffer[]) => (chunk: Buffer) => {
      bytes += chunk.byteLength;
      if (bytes > MAX_OUTPUT_BYTES) signalProcessTree(child);
      else into.push(chunk);
    };
    child.stdout.on("data", take(stdout));
    child.stderr.on("data", take(stderr));
    const endGroup = () => signalProcessTree(child);
    signal?.addEventListener("abort", endGroup, { once: true });
    child.once("error", (error: NodeJS.ErrnoException) => {
      signal?.removeEventListener("abort", endGroup);
      reject(signal?.aborted ? abortedError(signal, options.phase) : new GitCommandFailure(args, null, startFailure(error.code ?? error.message, options.cwd)));
    });
    child.once("close", (code) => {
      signal?.removeEventListener("abort", endGroup);
      // Whatever git started in its group (the remote helper, pack-objects) goes with it.
      signalProcessTree(child);
      if (signal?.aborted) return reject(abortedError(signal, options.phase));
      const stderrText = Buffer.concat(stderr).toString("utf8");
      if (code !== 0) return reject(new GitCommandFailure(args, code, stderrText, Buffer.concat(stdout).toString("utf8")));
      resolve({ stdout: Buffer.concat(stdout), stderr: stderrText });
    });
    child.stdin.on("error", () => undefined);
    if (options.input !== undefined) child.stdin.end(options.input);
    else child.stdin.end();
  });
}

/** A git command whose stdout is read as a stream ({@link streamGit}). */
export interface StreamingGitCommand {
  stdout: Readable;
  /** Settles when git has exited: rejects with {@link GitCommandFailure} on a non-zero exit. */
  exited: Promise<void>;
  /** Stops git (when the reader gave up). */
  kill(): void;
}

/** Runs `git` like {@link runGit} but hands out stdout as it comes (archives), instead of buffering it. */
export function streamGit(args: readonly string[], options: Omit<GitCommandOptions, "input"> = {}): StreamingGitCommand {
  const child = spawn("git", args, { cwd: options.cwd, env: gitEnvironment(options.env), stdio: ["ignore", "pipe", "pipe"], ...(options.signal ? { signal: options.signal } : {}) });
  const stderr: Buffer[] = [];
  child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
  const exited = new Promise<void>((resolve, reject) => {
    child.once("error", (error) => reject(options.signal?.aborted ? abortedError(options.signal, options.phase) : new GitCommandFailure(args, null, error.message)));
    child.once("close", (code) => {
      if (options.signal?.aborted) return reject(abortedError(options.signal, options.phase));
      if (code === 0) resolve();
      else reject(new GitCommandFailure(args, code, Buffer.concat(stderr).toString("utf8")));
    });
  });
  exited.catch(() => undefined);
  // Read from now on (with backpressure): Node drops the unread output of a child that has exited.
  const stdout = child.stdout.pipe(new PassThrough());
  return { stdout, exited, kill: () => void child.kill("SIGKILL") };
}
