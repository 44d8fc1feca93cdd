/** The phases of the loop, in the order they run. Each has a file of its own name. */
export const PHASES = [
  "validate",
  "sandbox",
  "clone",
  "setup",
  "agent",
  "collect",
  "verify",
  "commit",
  "push",
  "pull-request",
  "teardown",
] as const;

/** One of {@link PHASES}: a step of the loop, named in events, timings and errors. */
export type Phase = (typeof PHASES)[number];
