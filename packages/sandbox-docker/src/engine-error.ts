import { agentError, ErrorCode, RunningAgentError } from "@running-agent/core";

/** What docker-modem attaches to the errors it raises. */
interface EngineErrorShape {
  statusCode?: number;
  code?: string;
  reason?: string;
  json?: { message?: string } | unknown;
  message?: string;
}

/** The Engine's own message for a failed API call (its JSON `message`), or the error's message. */
export function engineMessage(error: unknown): string {
  const shape = (error ?? {}) as EngineErrorShape;
  const json = shape.json as { message?: unknown } | undefined;
  if (json && typeof json === "object" && typeof json.message === "string") return json.message;
  if (typeof shape.message === "string") return shape.message;
  return String(error);
}

/** The HTTP status the Engine answered with, when the call reached it. */
export function engineStatus(error: unknown): number | undefined {
  const status = (error as EngineErrorShape | undefined)?.statusCode;
  return typeof status === "number" ? status : undefined;
}

/** True when the error means the Engine could not be reached at all (socket missing, refused, TLS, timeout). */
export function isEngineUnreachable(error: unknown): boolean {
  if (engineStatus(error) !== undefined) return false;
  const code = (error as EngineErrorShape | undefined)?.code;
  return (
    typeof code === "string" &&
    ["ENOENT", "ECONNREFUSED", "EACCES", "ECONNRESET", "EHOSTUNREACH", "ENOTFOUND", "ETIMEDOUT", "EPIPE", "ERR_TLS_CERT_ALTNAME_INVALID", "DEPTH_ZERO_SELF_SIGNED_CERT", "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "CERT_HAS_EXPIRED"].includes(code)
  ) || /socket hang up|timeout/i.test(engineMessage(error));
}

/** The typed error for an Engine that cannot be reached, saying how to start one or point at one. */
export function engineUnavailableError(error: unknown, where: string): RunningAgentError {
  return agentError(
    ErrorCode.SANDBOX_UNAVAILABLE,
    `No Docker Engine answered at ${where} (${engineMessage(error)}). Start one (e.g. \`dockerd\` or \`systemctl start docker\`), ` +
      "or point DOCKER_HOST (or the `docker` setting of createDockerSandbox) at a reachable engine.",
    { cause: error, details: { endpoint: where } },
  );
}

/**
 * True when the Engine says the container (or exec) is gone or going: 404, or a refusal because it
 * is stopped or being removed (409, or 500 "container not running … Removal In Progress" from an
 * exec created while an auto-removed container goes away).
 */
export function isGone(error: unknown): boolean {
  const status = engineStatus(error);
  return status === 404 || ((status === 409 || status === 500) && /removal|is not running|container not running|is dead|stopped state/i.test(engineMessage(error)));
}

/** Keeps typed errors as they are and wraps anything else in the given code. */
export function asSandboxError(error: unknown, code: ErrorCode, message: string): RunningAgentError {
  if (RunningAgentError.isInstance(error)) return error;
  return agentError(code, `${message}: ${engineMessage(error)}`, { cause: error });
}
