import { abortedError, agentError, ErrorCode, isAbortError, RunningAgentError } from "../errors.js";
import type { Phase } from "../phases.js";

/**
 * The typed error for an HTTP status a Git remote answered with (401, 403, 404, 429), else
 * undefined. Messages name the URL (already without credentials) and the status, never a header.
 */
export function httpStatusFailure(status: number, url: string, phase: Phase): RunningAgentError | undefined {
  const details = { status, url };
  if (status === 401) {
    return agentError(ErrorCode.AUTH_FAILED, `${url} refused the credentials (HTTP 401). Check the token and that it has access to the repository.`, { phase, details });
  }
  if (status === 403) {
    return agentError(ErrorCode.PERMISSION_DENIED, `${url} denied access (HTTP 403). The token needs ${phase === "push" ? "write" : "read"} access to the repository.`, { phase, details });
  }
  if (status === 404) {
    return agentError(ErrorCode.REPO_NOT_FOUND, `${url} was not found (HTTP 404). Check the URL, or that the token can see the repository.`, { phase, details });
  }
  if (status === 429) return agentError(ErrorCode.RATE_LIMITED, `${url} is rate limiting requests (HTTP 429). Try again later.`, { phase, details });
  return undefined;
}

/** The typed abort error when the signal fired or the error is an abort, else undefined. */
export function abortFailure(error: unknown, signal: AbortSignal | undefined, phase: Phase): RunningAgentError | undefined {
  if (signal?.aborted || isAbortError(error)) return abortedError(signal, phase);
  return undefined;
}

/** Keeps a RunningAgentError (with its phase filled in), or wraps anything else in the given code. */
export function wrapFailure(error: unknown, code: ErrorCode, message: string, phase: Phase): RunningAgentError {
  if (RunningAgentError.isInstance(error)) {
    error.phase ??= phase;
    return error;
  }
  return agentError(code, message, { phase, cause: error });
}
