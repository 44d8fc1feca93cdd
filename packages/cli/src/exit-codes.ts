/**
 * The exit codes of `running-agent run`. They tell success, no changes and failure apart
 * so that scripts can branch on them; 64 and 130 follow the sysexits and shell conventions.
 */
export const ExitCode = {
  /** The branch is pushed and the pull request is open. */
  SUCCESS: 0,
  /** The task failed: a typed error, its code and message on stderr. */
  FAILURE: 1,
  /** The agent finished without changing anything: no branch, no pull request. */
  NO_CHANGES: 2,
  /** The command line was wrong (EX_USAGE). */
  USAGE: 64,
  /** Cancelled with Ctrl+C (128 + SIGINT), after everything was torn down. */
  CANCELLED: 130,
  /** Stopped with SIGTERM (128 + 15), after everything was torn down. */
  TERMINATED: 143,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];
