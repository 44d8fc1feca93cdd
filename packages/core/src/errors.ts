import type { Phase } from "./phases.js";

/**
 * Every error code the library and its adapters raise, in one table.
 * The value is the code itself so that it survives JSON round trips.
 */
export const ErrorCode = {
  // Validation: raised before anything is created.
  /** An option is malformed or out of range; the message names it. */
  INVALID_OPTIONS: "INVALID_OPTIONS",
  /** `repo` is empty or not a path or URL the core can read. */
  INVALID_REPO: "INVALID_REPO",
  /** `task` is not a string, empty, or too long. */
  INVALID_TASK: "INVALID_TASK",
  /** The model is malformed: a `provider/model` string, a base URL, limits or a key that cannot be used. */
  INVALID_MODEL: "INVALID_MODEL",
  /** The model's provider is none of `MODEL_PROVIDERS`. */
  UNKNOWN_MODEL_PROVIDER: "UNKNOWN_MODEL_PROVIDER",
  /** The model needs a key and neither the options nor the environment have one; `details.env` names the variables. */
  MISSING_API_KEY: "MISSING_API_KEY",
  /** A branch name git would refuse (`branch`, `baseBranch` or a made one). */
  INVALID_BRANCH: "INVALID_BRANCH",
  /** The base branch does not exist in the repository. */
  BASE_BRANCH_NOT_FOUND: "BASE_BRANCH_NOT_FOUND",
  /** `sandbox` is not a sandbox provider (no spec version, id or `create`). */
  INVALID_SANDBOX_PROVIDER: "INVALID_SANDBOX_PROVIDER",
  /** `gitHost` is not a Git host. */
  INVALID_GIT_HOST: "INVALID_GIT_HOST",
  /** A provider or Git host implements a spec version this core does not know. */
  UNSUPPORTED_SPEC_VERSION: "UNSUPPORTED_SPEC_VERSION",
  /** The task needs an optional capability the provider or host lacks (e.g. a network policy it cannot enforce). */
  CAPABILITY_UNSUPPORTED: "CAPABILITY_UNSUPPORTED",
  /** The Git host does not serve this repository's URL (e.g. an https URL with the local host). */
  UNSUPPORTED_REPO: "UNSUPPORTED_REPO",
  /** A sandbox provider or Git host answered outside its spec (e.g. `null` where a result was due). */
  SPEC_VIOLATION: "SPEC_VIOLATION",
  // Git host and credentials.
  /** The Git host or the sandbox service refused the credentials. */
  AUTH_FAILED: "AUTH_FAILED",
  /** The credentials are valid but may not do this (read, push, open a change request). */
  PERMISSION_DENIED: "PERMISSION_DENIED",
  /** The repository does not exist, or the credentials cannot see it. */
  REPO_NOT_FOUND: "REPO_NOT_FOUND",
  /** The repository is archived (read-only). */
  REPO_ARCHIVED: "REPO_ARCHIVED",
  /** The Git host's rate limit held after the retries. */
  RATE_LIMITED: "RATE_LIMITED",
  /** The Git host answered with an error of its own (a 5xx, an unexpected answer). */
  GIT_HOST_ERROR: "GIT_HOST_ERROR",
  // Sandbox.
  /** The sandbox service cannot be reached, or its package is not installed. */
  SANDBOX_UNAVAILABLE: "SANDBOX_UNAVAILABLE",
  /** The local sandbox cannot isolate here (bubblewrap missing or not allowed); the message says how to fix it. */
  ISOLATION_UNAVAILABLE: "ISOLATION_UNAVAILABLE",
  /** The provider could not create the sandbox. */
  SANDBOX_CREATE_FAILED: "SANDBOX_CREATE_FAILED",
  /** The sandbox image does not exist and cannot be pulled. */
  SANDBOX_IMAGE_NOT_FOUND: "SANDBOX_IMAGE_NOT_FOUND",
  /** The image lacks what the sandbox needs (a shell, git, OpenCode). */
  SANDBOX_IMAGE_INVALID: "SANDBOX_IMAGE_INVALID",
  /** Building the sandbox image failed. */
  SANDBOX_IMAGE_BUILD_FAILED: "SANDBOX_IMAGE_BUILD_FAILED",
  /** The provider refused the requested resources, or cannot enforce them. */
  SANDBOX_RESOURCE_LIMIT: "SANDBOX_RESOURCE_LIMIT",
  /** A process in the sandbox was killed for using more memory than allowed. */
  SANDBOX_OUT_OF_MEMORY: "SANDBOX_OUT_OF_MEMORY",
  /** The sandbox ended while the task was using it. */
  SANDBOX_TERMINATED: "SANDBOX_TERMINATED",
  /** The sandbox service refused for lack of quota or capacity. */
  SANDBOX_QUOTA_EXCEEDED: "SANDBOX_QUOTA_EXCEEDED",
  /** A command could not be started or run in the sandbox. */
  SANDBOX_EXEC_FAILED: "SANDBOX_EXEC_FAILED",
  /** A command ran past its `timeoutMs` and was killed. */
  SANDBOX_EXEC_TIMEOUT: "SANDBOX_EXEC_TIMEOUT",
  /** Reading or writing a file in the sandbox failed (missing, not a file, no access). */
  SANDBOX_FILE_ERROR: "SANDBOX_FILE_ERROR",
  /** No port could be allocated or exposed. */
  SANDBOX_PORT_UNAVAILABLE: "SANDBOX_PORT_UNAVAILABLE",
  /** The session was used after it was destroyed. */
  SANDBOX_DESTROYED: "SANDBOX_DESTROYED",
  // The loop.
  /** Cloning the repository, or placing it in the sandbox, failed. */
  CLONE_FAILED: "CLONE_FAILED",
  /** A Git remote sent and took nothing for `gitStallTimeoutMs` during a clone, fetch or push; `details.remote` names it. */
  GIT_REMOTE_STALLED: "GIT_REMOTE_STALLED",
  /** A setup command exited with a non-zero code; the message ends with its output's tail, `details` names the command. */
  SETUP_FAILED: "SETUP_FAILED",
  /** The OpenCode server did not start or answer in the sandbox. */
  AGENT_START_FAILED: "AGENT_START_FAILED",
  /** The agent's session ended with an error. */
  AGENT_FAILED: "AGENT_FAILED",
  /** The agent ran past `agentTimeoutMs`. */
  AGENT_TIMEOUT: "AGENT_TIMEOUT",
  /** `handle.say()` after the agent's last round, or a message still queued when the task ended. */
  AGENT_FINISHED: "AGENT_FINISHED",
  /** The model's API refused or failed (a bad key, an unknown model, a 4xx). */
  MODEL_ERROR: "MODEL_ERROR",
  /** Bringing the changes back from the sandbox failed. */
  COLLECT_FAILED: "COLLECT_FAILED",
  /** The sandbox sent a path that escapes the workspace, or an entry that cannot be collected safely. */
  UNSAFE_PATH: "UNSAFE_PATH",
  /** A file the agent changed holds a secret of the run (a key, a token, a password); nothing is committed or pushed. */
  SECRET_IN_CHANGES: "SECRET_IN_CHANGES",
  /** The changes exceed `changeLimits` (largest file, total size or file count); nothing is committed or pushed. */
  CHANGES_TOO_LARGE: "CHANGES_TOO_LARGE",
  /** Checks still failed after the last fix round and `onChecksFailed` is `"fail"`; `details.rounds` holds the results. */
  CHECKS_FAILED: "CHECKS_FAILED",
  /** Committing the changes failed. */
  COMMIT_FAILED: "COMMIT_FAILED",
  /** Pushing the branch failed. */
  PUSH_FAILED: "PUSH_FAILED",
  /** The remote rejected the push (the branch moved, or is protected) after the retries. */
  PUSH_REJECTED: "PUSH_REJECTED",
  /** Opening or updating the change request failed. */
  PULL_REQUEST_FAILED: "PULL_REQUEST_FAILED",
  /** The whole task ran past `timeoutMs`. */
  TIMEOUT: "TIMEOUT",
  /** The task was cancelled (its signal, `handle.cancel()`). */
  ABORTED: "ABORTED",
  /** A bug: an error the core did not expect. */
  INTERNAL: "INTERNAL",
} as const;

/** One of the codes in {@link ErrorCode}. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const marker = Symbol.for("running-agent.error");

/** What {@link RunningAgentError}'s constructor takes. */
export interface RunningAgentErrorOptions {
  /** The code from {@link ErrorCode}. */
  code: ErrorCode;
  /** What went wrong and what to do about it. */
  message: string;
  /** The phase of the loop in which it happened, when it happened inside the loop. */
  phase?: Phase;
  /** The underlying error. */
  cause?: unknown;
  /** Extra machine-readable facts (never secrets). */
  details?: Record<string, unknown>;
}

/**
 * The one error type the library throws. Check with {@link RunningAgentError.isInstance},
 * which also works across duplicate copies of this package.
 */
export class RunningAgentError extends Error {
  /** The mark {@link RunningAgentError.isInstance} looks for (`Symbol.for`, so shared by every copy). */
  readonly [marker] = true;
  /** Always `"RunningAgentError"`. */
  override readonly name: string = "RunningAgentError";
  /** What went wrong, from {@link ErrorCode}. */
  readonly code: ErrorCode;
  /** The phase of the loop it happened in; set by the loop when the error passes a phase. */
  phase: Phase | undefined;
  /** Extra machine-readable facts (never secrets). */
  readonly details: Record<string, unknown> | undefined;

  constructor(options: RunningAgentErrorOptions) {
    super(options.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code;
    this.phase = options.phase;
    this.details = options.details;
  }

  /** True for a RunningAgentError from any copy of this package (where `instanceof` would miss one). */
  static isInstance(error: unknown): error is RunningAgentError {
    return typeof error === "object" && error !== null && (error as Record<symbol, unknown>)[marker] === true;
  }

  /** A plain object for logs and JSON APIs. */
  toJSON(): {
    /** `RunningAgentError`. */
    name: string;
    /** The code. */
    code: ErrorCode;
    /** The message. */
    message: string;
    /** The phase, when known. */
    phase?: Phase;
    /** The details, when any. */
    details?: Record<string, unknown>;
  } {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      ...(this.phase ? { phase: this.phase } : {}),
      ...(this.details ? { details: this.details } : {}),
    };
  }
}

/** Shorthand used across the code base. */
export function agentError(code: ErrorCode, message: string, extra: Omit<RunningAgentErrorOptions, "code" | "message"> = {}): RunningAgentError {
  return new RunningAgentError({ code, message, ...extra });
}

/** True when the error (or its cause chain) is an abort. */
export function isAbortError(error: unknown): boolean {
  if (RunningAgentError.isInstance(error)) return error.code === ErrorCode.ABORTED;
  return error instanceof Error && (error.name === "AbortError" || error.name === "ABORT_ERR");
}

/** The typed error for an aborted signal. */
export function abortedError(signal: AbortSignal | undefined, phase?: Phase): RunningAgentError {
  const reason = signal?.reason;
  if (RunningAgentError.isInstance(reason)) return reason;
  return new RunningAgentError({
    code: ErrorCode.ABORTED,
    message: "The task was cancelled.",
    ...(phase ? { phase } : {}),
    ...(reason !== undefined ? { cause: reason } : {}),
  });
}

/** Throws the typed abort error when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined, phase?: Phase): void {
  if (signal?.aborted) throw abortedError(signal, phase);
}
