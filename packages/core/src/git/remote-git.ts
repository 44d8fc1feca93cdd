import { pathToFileURL } from "node:url";
import { agentError, ErrorCode, type RunningAgentError } from "../errors.js";
import type { Phase } from "../phases.js";
import type { GitCredentials } from "../spec/git-host-spec.js";
import { GitCommandFailure, runGit, type GitCommandResult } from "./git-command.js";
import { httpStatusFailure } from "./remote-errors.js";

/** True when the remote is reached over HTTP (hardened git CLI, {@link runRemoteGit}) rather than as a local path. */
export function isHttpRemote(remote: string): boolean {
  return /^https?:\/\//i.test(remote);
}

/** How long a Git remote may send and take nothing before the clone, ref read or push fails. */
export const DEFAULT_GIT_STALL_TIMEOUT_MS = 60_000;

/** What {@link runRemoteGit} needs besides git's arguments. */
export interface RemoteGitOptions {
  /** The http(s) remote, without credentials. */
  url: string;
  /** Sent only as an Authorization header for {@link RemoteGitOptions.url}, in the environment of this one call. */
  credentials?: GitCredentials;
  /** Fail with GIT_REMOTE_STALLED after this long without a byte moving (rounded up to whole seconds: curl's unit). */
  stallTimeoutMs: number;
  /** The loop phase, for the errors. */
  phase: Phase;
  cwd?: string;
  signal?: AbortSignal;
  /** More settings for this call (`[key, value]`), after the hardened ones. */
  config?: ReadonlyArray<readonly [string, string]>;
}

/**
 * The environment that configures one git call to an http(s) remote, through GIT_CONFIG_COUNT /
 * GIT_CONFIG_KEY_n / GIT_CONFIG_VALUE_n: never on the command line (visible to every user) or in a
 * file (the clone's config goes into the sandbox). Hardened: no hooks, no credential helper, only
 * the remote's protocol, and curl's low-speed limit as the stall timer.
 */
export function remoteGitEnvironment(options: Pick<RemoteGitOptions, "url" | "credentials" | "stallTimeoutMs" | "config">): Record<string, string> {
  const { url, credentials } = options;
  const scheme = new URL(url).protocol.replace(/:$/, "").toLowerCase();
  const config: Array<readonly [string, string]> = [
    ["core.hooksPath", "/dev/null"],
    ["credential.helper", ""],
    ["protocol.allow", "never"],
    [`protocol.${scheme}.allow`, "always"],
    // Fails a transfer that moved less than a byte a second for this many whole seconds (curl counts both directions).
    ["http.lowSpeedLimit", "1"],
    ["http.lowSpeedTime", String(stallSeconds(options.stallTimeoutMs))],
    ...(options.config ?? []),
  ];
  if (credentials) config.push([`http.${url}.extraHeader`, `Authorization: Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString("base64")}`]);
  const env: Record<string, string> = { GIT_CONFIG_COUNT: String(config.length) };
  config.forEach(([key, value], index) => {
    env[`GIT_CONFIG_KEY_${index}`] = key;
    env[`GIT_CONFIG_VALUE_${index}`] = value;
  });
  return env;
}

/**
 * Runs git against an http(s) remote with {@link remoteGitEnvironment}, in a process group of its
 * own that an abort ends whole (the remote helper and index-pack or pack-objects with it). Rejects
 * with GIT_REMOTE_STALLED, AUTH_FAILED, PERMISSION_DENIED, REPO_NOT_FOUND or RATE_LIMITED when
 * git's output says so, with ABORTED when the signal fired, else with the {@link GitCommandFailure}
 * for the caller to read.
 */
export async function runRemoteGit(args: readonly string[], options: RemoteGitOptions): Promise<GitCommandResult> {
  const { url, phase } = options;
  try {
    return await runGit(args, { ...(options.cwd ? { cwd: options.cwd } : {}), env: remoteGitEnvironment(options), signal: options.signal, phase, ownProcessGroup: true });
  } catch (error) {
    if (!(error instanceof GitCommandFailure)) throw error;
    throw remoteFailure(error, options) ?? error;
  }
}

/**
 * Runs git against a repository's remote, for a step that reads from it: over http(s) with
 * {@link runRemoteGit} (hardened, the credentials only in this call's environment), a local
 * repository through git's file:// transport (so that `--depth` applies as it does over http).
 * `args` gets the remote's address to put where git wants it. The clone and the push, whose
 * local and http forms differ in more than the address, choose for themselves.
 */
export function runGitOnRemote(remote: string, args: (address: string) => readonly string[], options: Omit<RemoteGitOptions, "url" | "config">): Promise<GitCommandResult> {
  if (isHttpRemote(remote)) return runRemoteGit(args(remote), { ...options, url: remote });
  return runGit(args(pathToFileURL(remote).href), { ...(options.cwd ? { cwd: options.cwd } : {}), signal: options.signal, phase: options.phase });
}

function remoteFailure(error: GitCommandFailure, options: RemoteGitOptions): RunningAgentError | undefined {
  const { url, phase, stallTimeoutMs } = options;
  const output = `${error.stdout}\n${error.stderr}`;
  if (/Operation too slow|Operation timed out|curl 28/i.test(output)) {
    return agentError(
      ErrorCode.GIT_REMOTE_STALLED,
      `The Git remote ${url} stopped responding during the ${phase}: nothing was sent or received for about ${stallSeconds(stallTimeoutMs)} s. Check that the server is up and reachable, or raise gitStallTimeoutMs for a slow link.`,
      { phase, details: { remote: url, stallTimeoutMs }, cause: error },
    );
  }
  const status = /returned error: (\d{3})/.exec(output)?.[1];
  const byStatus = status ? httpStatusFailure(Number(status), url, phase) : undefined;
  if (byStatus) return byStatus;
  // git reports a 401 after the header was sent as a failed prompt (prompts are off), a 404 by name.
  if (/Authentication failed|could not read (Username|Password)/.test(output)) return httpStatusFailure(401, url, phase);
  if (/repository '.*' not found/.test(output)) return httpStatusFailure(404, url, phase);
  return undefined;
}

function stallSeconds(stallTimeoutMs: number): number {
  return Math.max(1, Math.ceil(stallTimeoutMs / 1000));
}
