/**
 * The prompt: the user's task with what an unattended run needs to know. The task is untrusted and
 * only ever travels as prompt text.
 */
export function agentPrompt(task: string): string {
  return [
    "You are working unattended in the Git repository in the current directory. Nobody will answer questions: make reasonable choices and state them.",
    "Do the task below by changing files in this repository only.",
    "Do not commit, push, or create branches: your changes are collected and committed for you.",
    "When you are done, end with a short summary (a few lines) of what you changed and why.",
    "",
    "The task:",
    "",
    task,
  ].join("\n");
}

/** A session title from the task's first line (a title also saves OpenCode a title-generating model call). */
export function sessionTitle(task: string): string {
  const firstLine = task.trim().split("\n")[0] ?? "";
  return firstLine.length > 80 ? `${firstLine.slice(0, 79)}…` : firstLine || "Running Agent task";
}
