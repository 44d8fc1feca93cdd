import { agentError, ErrorCode } from "../errors.js";

/** Bounds on what the agent's changes may hold (`changeLimits` of runAgentTask). */
export interface ChangeLimits {
  /** The largest file, in bytes. Default 100 MiB (GitHub refuses larger files). */
  maxFileBytes?: number;
  /**
   * All added and modified files together, in bytes. Default 256 MiB.
   */
  maxTotalBytes?: number;
  /** Files added or modified. Default 10,000. */
  maxFiles?: number;
}

/** The defaults of {@link ChangeLimits}. */
export const DEFAULT_CHANGE_LIMITS: Required<ChangeLimits> = {
  maxFileBytes: 100 * 1024 * 1024,
  maxTotalBytes: 256 * 1024 * 1024,
  maxFiles: 10_000,
};

/**
 * Counts files and bytes as they are brought back, and fails with CHANGES_TOO_LARGE as soon as a
 * limit is passed: a 1 GiB file stops at the limit, it is never read to its end.
 */
export class ChangeBudget {
  private files = 0;
  private bytes = 0;

  constructor(private readonly limits: Required<ChangeLimits>) {}

  /** Counts one more file of (at least) `size` bytes. */
  addFile(path: string, size: number): void {
    this.files += 1;
    if (this.files > this.limits.maxFiles) {
      throw tooLarge(`The agent changed more than ${this.limits.maxFiles} files (changeLimits.maxFiles).`, { limit: "maxFiles", value: this.limits.maxFiles });
    }
    this.checkFile(path, size);
    this.addBytes(size);
  }

  /** Checks a file's size against the largest allowed. */
  checkFile(path: string, size: number): void {
    if (size > this.limits.maxFileBytes) {
      throw tooLarge(`${JSON.stringify(path)} is larger than ${this.limits.maxFileBytes} bytes (changeLimits.maxFileBytes).`, { limit: "maxFileBytes", value: this.limits.maxFileBytes, path });
    }
  }

  /** Counts bytes that arrive beyond what was announced. */
  addBytes(size: number): void {
    this.bytes += size;
    if (this.bytes > this.limits.maxTotalBytes) {
      throw tooLarge(`The changed files hold more than ${this.limits.maxTotalBytes} bytes (changeLimits.maxTotalBytes).`, { limit: "maxTotalBytes", value: this.limits.maxTotalBytes });
    }
  }
}

function tooLarge(message: string, details: Record<string, unknown>) {
  return agentError(ErrorCode.CHANGES_TOO_LARGE, `${message} Nothing was committed or pushed; raise the limit or ask for a smaller change.`, { phase: "collect", details });
}

/**
 * Looks for the run's secrets in the bytes of one file, chunk by chunk: the last bytes of a chunk
 * are kept so that a secret split across two chunks is still found. Matches raw bytes, so text and
 * binary files alike.
 */
export class SecretScanner {
  private readonly needles: Buffer[];
  private readonly keep: number;
  private tail = Buffer.alloc(0);

  constructor(secrets: readonly string[]) {
    this.needles = secrets.map((secret) => Buffer.from(secret, "utf8")).filter((needle) => needle.byteLength > 0);
    this.keep = Math.max(0, ...this.needles.map((needle) => needle.byteLength - 1));
  }

  /** True when there is nothing to look for. */
  get empty(): boolean {
    return this.needles.length === 0;
  }

  /** Starts a new file. */
  reset(): void {
    this.tail = Buffer.alloc(0);
  }

  /** True when a secret ends in this chunk (or straddles it and the previous one). */
  push(chunk: Uint8Array): boolean {
    if (this.needles.length === 0) return false;
    const window = this.tail.byteLength === 0 ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) : Buffer.concat([this.tail, chunk]);
    const found = this.needles.some((needle) => window.includes(needle));
    this.tail = Buffer.from(window.subarray(Math.max(0, window.byteLength - this.keep)));
    return found;
  }

  /** True when the whole text (a path, a symlink's target) holds a secret. */
  holds(text: string): boolean {
    const bytes = Buffer.from(text, "utf8");
    return this.needles.some((needle) => bytes.includes(needle));
  }
}

/** The error for a secret found in a changed file: names the file, never the secret. */
export function secretInChanges(path: string) {
  return agentError(
    ErrorCode.SECRET_IN_CHANGES,
    `The agent's change to ${JSON.stringify(path)} holds a secret of this run (the model's key, a Git token, a password or one of \`secrets\`). Nothing was committed or pushed.`,
    { phase: "collect", details: { path } },
  );
}
