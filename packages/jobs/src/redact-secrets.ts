/** Replaces every occurrence of each secret (and its JSON-escaped form) with `[REDACTED]`. */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let redacted = text;
  for (const secret of secrets) {
    if (secret.length < 4) continue; // too short to tell from ordinary text
    redacted = redacted.split(secret).join("[REDACTED]");
    const escaped = JSON.stringify(secret).slice(1, -1);
    if (escaped !== secret) redacted = redacted.split(escaped).join("[REDACTED]");
  }
  return redacted;
}
