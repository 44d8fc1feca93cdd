import { ErrorCode, type RunningAgentError } from "@running-agent/core";

/**
 * The error's message as the command line reads it. A few core messages tell a library caller
 * what to pass (`pass model: { … }`); on the command line that is a flag or a variable, so those
 * are said again in the CLI's terms, from the error's details. Every other message is the core's.
 */
export function cliErrorMessage(error: RunningAgentError): string {
  const details = error.details ?? {};
  if (error.code === ErrorCode.MISSING_API_KEY && Array.isArray(details.env) && typeof details.provider === "string") {
    const model = typeof details.model === "string" ? `/${details.model}` : "";
    return `No API key for "${details.provider}${model}": set ${details.env.join(" or ")} in the environment.`;
  }
  if (error.code === ErrorCode.INVALID_MODEL && details.missing === "baseURL") {
    return `The "openai-compatible" provider needs a base URL: pass --model-base-url http://host:port/v1 or set OPENAI_COMPATIBLE_BASE_URL.`;
  }
  return error.message;
}
