import { agentError, ErrorCode } from "@running-agent/core";

/**
 * Tokens travel in an Authorization header: a line break or another byte a header cannot hold
 * would only fail later, as "GitHub could not be reached". Throws INVALID_OPTIONS, never
 * showing the token.
 */
export function checkHeaderSafeToken(token: string, name: string): void {
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw agentError(
      ErrorCode.INVALID_OPTIONS,
      `${name} holds a character a token cannot have (a space, line break, control character or non-ASCII letter); copy the token again without it.`,
    );
  }
}
