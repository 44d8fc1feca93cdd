import { execFile } from "node:child_process";
import { abortedError } from "../errors.js";
import type { Phase } from "../phases.js";

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
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(abortedError(signal, options.phase));
  return new Promise((resolve, reject) => {
    const child = execFile(
      "git",
      args,
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
          if (typeof code === "string") {
            const reason = code === "ENOENT" ? `git could not be started: it is not on PATH${options.cwd ? `, or ${options.cwd} does not exist` : ""}` : `git failed (${code})`;
            return reject(new GitCommandFailure(args, null, reason));
          }
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
