/** Every code a {@link JobError} carries, in one table. The value is the code itself, so that it survives JSON. */
export const JobErrorCode = {
  /** Another process has the embedded job database open. */
  STORE_LOCKED: "STORE_LOCKED",
  /** Submit options that cannot be stored or run (a missing repo or task, a bad branch, an unknown field). */
  INVALID_JOB: "INVALID_JOB",
  /** The fleet store needs an encryption key for job secrets and got none, or a malformed one. */
  SECRET_KEY_INVALID: "SECRET_KEY_INVALID",
  /** A job's secret could not be decrypted (another key, or the stored text was changed). */
  SECRET_UNREADABLE: "SECRET_UNREADABLE",
  /** A job's secret was kept in the memory of a process that has since ended (embedded store). */
  SECRET_LOST: "SECRET_LOST",
  /** A worker stopped heartbeating and every attempt the job had was used up. */
  LEASE_EXPIRED: "LEASE_EXPIRED",
  /** No job with that id. */
  JOB_NOT_FOUND: "JOB_NOT_FOUND",
  /** The store could not be reached or answered with an error. */
  STORE_UNAVAILABLE: "STORE_UNAVAILABLE",
} as const;

/** One of the codes in the {@link JobErrorCode} table. */
export type JobErrorCode = (typeof JobErrorCode)[keyof typeof JobErrorCode];

const marker = Symbol.for("running-agent.job-error");

/** The one error type of `@running-agent/jobs`. {@link JobError.isInstance} works across copies of the package. */
export class JobError extends Error {
  /** Marks instances for {@link JobError.isInstance} (a `Symbol.for` key, shared by every copy of the package). */
  readonly [marker] = true;
  /** Always `"JobError"`. */
  override readonly name: string = "JobError";

  constructor(
    /** What went wrong, as a stable code from {@link JobErrorCode}: branch on this, not on the message. */
    readonly code: JobErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Whether `error` is a `JobError`, also one made by another copy of this package (where `instanceof` fails). */
  static isInstance(error: unknown): error is JobError {
    return typeof error === "object" && error !== null && (error as Record<symbol, unknown>)[marker] === true;
  }
}
