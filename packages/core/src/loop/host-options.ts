import type { GitHostTaskOptions } from "../spec/git-host-spec.js";
import type { TaskContext } from "./task-context.js";

/** The per-task options every Git host call gets: the signal and the caller's token override. */
export function hostOptions(context: TaskContext): GitHostTaskOptions {
  const token = context.options?.gitToken;
  return { signal: context.signal, ...(token ? { token } : {}) };
}
