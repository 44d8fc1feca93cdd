import type { Phase } from "./phases.js";

/**
 * Every error code the library and its adapters raise, in one table.
 * The value is the code itself so that it survives JSON round trips.
 */
export const ErrorCode = {
  // Validation: raised before anything is created.
  INVALID_OPTIONS: "INVALID_OPTIONS",
  INVALID_REPO: "INVALID_REPO",
  INVALID_TASK: "INVALID_TASK",
  INVALID_MODEL: "INVALID_MODEL",
  UNKNOWN_MODEL_PROVIDER: "UNKNOWN_MODEL_PROVIDER",
  MISSING_API_KEY: "MISSING_API_KEY",
  INVALID_BRANCH: "INVALID_BRANCH",
  BASE_BRANCH_NOT_FOUND: "BASE_BRANCH_NOT_FOUND",
  INVALID_SANDBOX_PROVIDER: "INVALID_SANDBOX_PROVIDER",
  INVALID_GIT_HOST: "INVALID_GIT_HOST",
  UNSUPPORTED_SPEC_VERSION: "UNSUPPORTED_SPEC_VERSION",
  CAPABILITY_UNSUPPORTED: "CAPABILITY_UNSUPPORTED",
  UNSUPPORTED_REPO: "UNSUPPORTED_REPO",
  /** A sandbox provider or Git host answered outside its spec (e.g. `null` where a result was due). */
  SPEC_VIOLATION: "SPEC_VIOLATION",
  // Git host and credentials.
  AUTH_FAILED: "AUTH_FAILED",
  PERMISSION_DENIED: "PERMISSION_DENIED",
  REPO_NOT_FOUND: "REPO_NOT_FOUND",
  REPO_ARCHIVED: "REPO_ARCHIVED",
  RATE_LIMITED: "RATE_LIMITED",
  GIT_HOST_ERROR: "GIT_HOST_ERROR",
  // Sandbox.
  SANDBOX_UNAVAILABLE: "SANDBOX_UNAVAILABLE",
  ISOLATION_UNAVAILABLE: "ISOLATION_UNAVAILABLE",
  SANDBOX_CREATE_FAILED: "SANDBOX_CREATE_FAILED",
  SANDBOX_IMAGE_NOT_FOUND: "SANDBOX_IMAGE_NOT_FOUND",
  SANDBOX_IMAGE_INVALID: "SANDBOX_IMAGE_INVALID",
  SANDBOX_IMAGE_BUILD_FAILED: "SANDBOX_IMAGE_BUILD_FAILED",
  SANDBOX_RESOURCE_LIMIT: "SANDBOX_RESOURCE_LIMIT",
  SANDBOX_OUT_OF_MEMORY: "SANDBOX_OUT_OF_MEMORY",
  SANDBOX_TERMINATED: "SANDBOX_TERMINATED",
  SANDBOX_QUOTA_EXCEEDED: "SANDBOX_QUOTA_EXCEEDED",
  SANDBOX_EXEC_FAILED: "SANDBOX_EXEC_FAILED",
  SANDBOX_EXEC_TIMEOUT: "SANDBOX_EXEC_TIMEOUT",
  SANDBOX_FILE_ERROR: "SANDBOX_FILE_ERROR",
  SANDBOX_PORT_UNAVAILABLE: "SANDBOX_PORT_UNAVAILABLE",
  SANDBOX_DESTROYED: "SANDBOX_DESTROYED",
  // The loop.
  CLONE_FAILED: "CLONE_FAILED",
  /** A Git remote sent and took nothing for `gitStallTimeoutMs` during a clone, fetch or push; `details.remote` names it. */
  GIT_REMOTE_STALLED: "GIT_REMOTE_STALLED",
  SETUP_FAILED: "SETUP_FAILED",
  AGENT_START_FAILED: "AGENT_START_FAILED",
  AGENT_FAILED: "AGENT_FAILED",
  AGENT_TIMEOUT: "AGENT_TIMEOUT",
  /** `handle.say()` after the agent's last round, or a message still queued when the task ended. */
  AGENT_FINISHED: "AGENT_FINISHED",
  MODEL_ERROR: "MODEL_ERROR",
  COLLECT_FAILED: "COLLECT_FAILED",
  UNSAFE_PATH: "UNSAFE_PATH",
  /** A file the agent changed holds a secret of the run (a key, a token, a password); nothing is committed or pushed. */
  SECRET_IN_CHANGES: "SECRET_IN_CHANGES",
  /** The changes exceed `changeLimits` (largest file, total size or file count); nothing is committed or pushed. */
  CHANGES_TOO_LARGE: "CHANGES_TOO_LARGE",
  /** Checks still failed after the last fix round and `onChecksFailed` is `"fail"`; `details.rounds` holds the results. */
  CHECKS_FAILED: "CHECKS_FAILED",
  COMMIT_FAILED: "COMMIT_FAILED",
  PUSH_FAILED: "PUSH_FAILED",
  PUSH_REJECTED: "PUSH_REJECTED",
  PULL_REQUEST_FAILED: "PULL_REQUEST_FAILED",
  TIMEOUT: "TIMEOUT",
  ABORTED: "ABORTED",
  INTERNAL: "INTERNAL",
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const marker = Symbol.for("running-agent.error");

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
  readonly [marker] = true;
  override readonly name: string = "RunningAgentError";
  readonly code: ErrorCode;
  phase: Phase | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(options: RunningAgentErrorOptions) {
    super(options.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code;
    this.phase = options.phase;
    this.details = options.details;
  }

  static isInstance(error: unknown): error is RunningAgentError {
    return typeof error === "object" && error !== null && (error as Record<symbol, unknown>)[marker] === true;
  }

  /** A plain object for logs and JSON APIs. */
  toJSON(): { name: string; code: ErrorCode; message: string; phase?: Phase; details?: Record<string, unknown> } {
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
