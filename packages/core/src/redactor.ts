/** What replaces a secret in everything that leaves the loop. */
export const REDACTED = "[REDACTED]";

// Secrets shorter than this would redact ordinary words; no real key or token is this short.
export const MIN_SECRET_LENGTH = 6;

/**
 * Credentials embedded in a URL: `scheme://user:password@host`, where the password may hold an
 * unencoded `/` (so a URL that only looks like it has a port and a path may be over-redacted,
 * never under-redacted). A match starts only at a letter
 * that does not follow a letter (the leftmost start of any match), so scanning a long text stays
 * linear instead of retrying the scheme from every letter of every word.
 */
const URL_CREDENTIALS = /(?<![a-z])([a-z][a-z0-9+.-]*:\/\/)[^/@\s:]+(?::[^@\s]*)?@/gi;

/**
 * Removes every known secret from strings and from the strings inside objects.
 * It knows the secrets the run was given (API keys, tokens) and strips credentials from URLs.
 */
export class Redactor {
  #secrets: string[] = [];
  #sources: Array<() => Iterable<string | undefined>> = [];

  constructor(secrets: Iterable<string | undefined> = []) {
    this.add(...secrets);
  }

  /**
   * Adds a source asked for its secrets before every redaction: a Git host that mints new
   * tokens during a run (GitHub App installations) has them redacted from the moment they exist.
   */
  addSource(source: () => Iterable<string | undefined>): void {
    this.#sources.push(source);
  }

  /** Adds secrets; empty and very short values are ignored. */
  add(...secrets: Array<string | undefined>): void {
    for (const secret of secrets) {
      if (typeof secret !== "string" || secret.length < MIN_SECRET_LENGTH) continue;
      if (!this.#secrets.includes(secret)) this.#secrets.push(secret);
      // Longest first, so that a secret containing another is removed whole.
      this.#secrets.sort((a, b) => b.length - a.length);
    }
  }

  /** Every secret known now (sources asked again), longest first: for scanning what leaves the loop as files. */
  secrets(): string[] {
    this.#refresh();
    return [...this.#secrets];
  }

  /** The text with every secret replaced. */
  redactText(text: string): string {
    this.#refresh();
    return this.#redactString(text);
  }

  #refresh(): void {
    for (const source of this.#sources) this.add(...source());
  }

  #redactString(text: string): string {
    let result = text;
    for (const secret of this.#secrets) {
      if (result.includes(secret)) result = result.split(secret).join(REDACTED);
    }
    // Most text holds no URL with credentials: two plain searches are much cheaper than the pattern.
    if (!result.includes("@") || !result.includes("://")) return result;
    return result.replace(URL_CREDENTIALS, `$1${REDACTED}@`);
  }

  /** A deep copy of a JSON-like value with every string redacted. */
  redact<T>(value: T): T {
    this.#refresh();
    return this.#redactValue(value, 0) as T;
  }

  #redactValue(value: unknown, depth: number): unknown {
    if (typeof value === "string") return this.#redactString(value);
    if (depth > 20 || value === null || typeof value !== "object") return value;
    if (Array.isArray(value)) return value.map((item) => this.#redactValue(item, depth + 1));
    if (value instanceof Uint8Array) return value;
    const copy: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) copy[key] = this.#redactValue(item, depth + 1);
    return copy;
  }
}
