import { commitChanges } from "../git/commit.js";
import { taskTitle } from "./task-title.js";
import type { TaskContext } from "./task-context.js";

/** Phase 7a: commits the collected changes on the task's branch with the configured identities. */
export async function commitOnBranch(context: TaskContext): Promise<void> {
  const options = context.options!;
  const branch = context.taskBranch!;
  const { commit } = await commitChanges({
    dir: context.cloneDir!,
    branch,
    message: context.redactor.redactText(commitMessage(context)),
    author: options.author,
    committer: options.committer,
    // Collect staged exactly the changed paths; the host clone has no working tree to add.
    stageWorkingTree: false,
    signal: context.signal,
  });
  context.branch = branch;
  context.commit = commit;
}

function commitMessage(context: TaskContext): string {
  const options = context.options!;
  const lines = [options.pullRequest.title ?? taskTitle(options.task), "", options.task];
  if (context.summary.trim()) lines.push("", context.summary.trim());
  const trailers = [`Running-Agent-Task: ${context.taskId}`];
  for (const coAuthor of options.coAuthors) trailers.push(`Co-authored-by: ${coAuthor.name} <${coAuthor.email}>`);
  lines.push("", ...trailers);
  return `${lines.join("\n")}\n`;
}
