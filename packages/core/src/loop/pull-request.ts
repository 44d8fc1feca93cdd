import type { BlockedConnection } from "../network/egress-proxy.js";
import { taskTitle } from "./task-title.js";
import { hostOptions } from "./host-options.js";
import type { TaskContext } from "./task-context.js";
import type { ChangedFile } from "../changes.js";
import type { Verification } from "../verify/check-types.js";
import type { ChangeRequest } from "../spec/git-host-spec.js";

/** Phase 7c: opens the change request, or updates the open one for the same branch. */
export async function openPullRequest(context: TaskContext): Promise<void> {
  const options = context.options!;
  const request = options.pullRequest;
  const changeRequest = await options.gitHost.openChangeRequest(
    context.repository!,
    {
      head: context.branch!,
      base: context.baseBranch!,
      title: context.redactor.redactText(request.title ?? taskTitle(options.task)),
      body: context.redactor.redactText(pullRequestBody(context)),
      // Unset, a new change request is ready for review and an existing one keeps its draft state;
      // checks that still fail under the "draft" policy make it a draft whatever was asked.
      ...(checksFailed(context) && options.onChecksFailed === "draft" ? { draft: true } : request.draft !== undefined ? { draft: request.draft } : {}),
      labels: request.labels ?? [],
      reviewers: request.reviewers ?? [],
      assignees: request.assignees ?? [],
    },
    hostOptions(context),
  );
  context.pullRequest = changeRequest;
  context.emit({ type: "change-request", url: changeRequest.url, number: changeRequest.number, created: changeRequest.created });
  await reportChecks(context, changeRequest);
}

/** The last round's checks go to the Git host when it can show them (a failure there is only a warning). */
async function reportChecks(context: TaskContext, changeRequest: ChangeRequest): Promise<void> {
  const gitHost = context.options!.gitHost;
  const verification = context.verification;
  if (!verification || !gitHost.reportChecks) return;
  const last = verification.rounds[verification.rounds.length - 1]!;
  try {
    await gitHost.reportChecks(
      context.repository!,
      {
        commit: context.commit!,
        branch: context.branch!,
        changeRequest,
        fixRounds: verification.rounds.length - 1,
        checks: last.checks.map(({ name, command, passed, exitCode, timedOut, durationMs }) => ({ name, command, passed, exitCode, timedOut, durationMs })),
      },
      hostOptions(context),
    );
  } catch (error) {
    if (context.signal.aborted) throw error;
    context.emit({
      type: "warning",
      code: "CHECKS_NOT_REPORTED",
      message: context.redactor.redactText(`The checks could not be recorded on ${context.repository!.id}: ${error instanceof Error ? error.message : String(error)}`),
    });
  }
}

/** The body: the caller's text, the agent's summary, the task, the diff stat and the run's facts. */
export function pullRequestBody(context: TaskContext): string {
  const options = context.options!;
  const sections: string[] = [];
  if (options.pullRequest.body?.trim()) sections.push(options.pullRequest.body.trim());
  sections.push(`## Summary\n\n${context.summary.trim() || "The agent gave no summary."}`);
  sections.push(`## Task\n\n${quote(options.task)}`);
  sections.push(`## Changes\n\n${diffStat(context.changes)}`);
  if (context.verification) sections.push(checksSection(context.verification));
  if (context.networkBlocked?.length) sections.push(blockedSection(context.networkBlocked));
  const usage = context.usage;
  const seconds = ((Date.now() - context.startedAt) / 1000).toFixed(1);
  sections.push(
    [
      "## Run",
      "",
      `- Model: \`${options.model.provider}/${options.model.model}\``,
      `- Duration: ${seconds} s`,
      `- Tokens: ${usage.inputTokens} in, ${usage.outputTokens} out, ${usage.cacheReadTokens} cache read, ${usage.reasoningTokens} reasoning`,
      `- Cost: ${usage.costSource === "unknown" ? "unknown (no price for this model)" : `${usage.cost.toFixed(4)}${usage.costSource === "prices" ? " (from the given prices)" : ""}`}${context.agentRounds.length > 1 ? ` over ${context.agentRounds.length} agent rounds` : ""}`,
      `- Task id: \`${context.taskId}\``,
    ].join("\n"),
  );
  if (options.pullRequest.closesIssue !== undefined) sections.push(`Closes #${options.pullRequest.closesIssue}`);
  return `${sections.join("\n\n")}\n`;
}

/** The refused destinations, once each with how often, as Copilot lists a firewall's blocks. */
function blockedSection(blocked: readonly BlockedConnection[]): string {
  const counts = new Map<string, { count: number; reason: string }>();
  for (const entry of blocked) {
    const key = `${entry.host.includes(":") ? `[${entry.host}]` : entry.host}:${entry.port}`;
    const known = counts.get(key);
    if (known) known.count += 1;
    else counts.set(key, { count: 1, reason: entry.reason });
  }
  const lines = [...counts].slice(0, 50).map(([destination, { count, reason }]) => `- ${codeSpan(destination)}${count > 1 ? ` (${count} times)` : ""}: ${reason}`);
  if (counts.size > 50) lines.push(`- and ${counts.size - 50} more`);
  return ["## Blocked network requests", "", "The sandbox's network policy refused these connections:", "", ...lines].join("\n");
}

function quote(text: string): string {
  return text
    .trim()
    .split(/\r?\n/)
    .map((line) => `> ${line}`)
    .join("\n");
}

/** A Markdown diff stat: one line per file and a total. */
export function diffStat(changes: readonly ChangedFile[]): string {
  if (changes.length === 0) return "No files changed.";
  const lines = changes.map((change) => {
    const path = change.status === "renamed" ? `${codeSpan(change.previousPath ?? "")} → ${codeSpan(change.path)}` : codeSpan(change.path);
    const counts = change.binary ? "binary" : `+${change.additions} −${change.deletions}`;
    const mode = change.previousMode && change.mode && change.previousMode !== change.mode ? `, mode ${change.previousMode} → ${change.mode}` : "";
    return `- ${path} (${change.status}, ${counts}${mode})`;
  });
  const additions = changes.reduce((sum, change) => sum + change.additions, 0);
  const deletions = changes.reduce((sum, change) => sum + change.deletions, 0);
  lines.push("", `${changes.length} file${changes.length === 1 ? "" : "s"} changed, ${additions} insertions(+), ${deletions} deletions(−)`);
  return lines.join("\n");
}

/**
 * A file name as one Markdown code span: control characters (a newline is legal in a file name)
 * are shown as escapes, and the fence is longer than any run of backticks in the name.
 */
export function codeSpan(path: string): string {
  // eslint-disable-next-line no-control-regex
  const printable = path.replace(/[\x00-\x1f\x7f]/g, (character) => {
    const named: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };
    return named[character] ?? `\\x${character.charCodeAt(0).toString(16).padStart(2, "0")}`;
  });
  const longestRun = Math.max(0, ...(printable.match(/`+/g) ?? []).map((run) => run.length));
  const fence = "`".repeat(longestRun + 1);
  const padding = printable.startsWith("`") || printable.endsWith("`") ? " " : "";
  return `${fence}${padding}${printable}${padding}${fence}`;
}

function checksFailed(context: TaskContext): boolean {
  return context.verification !== undefined && !context.verification.passed;
}

/** The checks of the last round, with the tail of each failing one's output. */
export function checksSection(verification: Verification): string {
  const last = verification.rounds[verification.rounds.length - 1]!;
  const fixRounds = verification.rounds.length - 1;
  const lines = [
    "## Checks",
    "",
    verification.passed
      ? `Every check passed${fixRounds > 0 ? ` after ${fixRounds} fix round${fixRounds === 1 ? "" : "s"}` : ""}.`
      : `**${last.checks.filter((check) => !check.passed).length} of ${last.checks.length} checks fail** after ${fixRounds} fix round${fixRounds === 1 ? "" : "s"}.`,
    "",
  ];
  for (const check of last.checks) {
    const how = check.passed ? "passed" : check.timedOut ? "timed out" : `failed (exit code ${check.exitCode})`;
    lines.push(`- ${check.passed ? "✅" : "❌"} ${codeSpan(check.name)}: ${codeSpan(check.command)} ${how} in ${(check.durationMs / 1000).toFixed(1)} s`);
  }
  for (const check of last.checks.filter((candidate) => !candidate.passed)) {
    const output = check.outputTail.trim() || "(no output)";
    const longestRun = Math.max(0, ...(output.match(/`+/g) ?? []).map((run) => run.length));
    const fence = "`".repeat(Math.max(3, longestRun + 1));
    lines.push("", `<details><summary>${check.name}: the last lines of its output</summary>`, "", fence, output, fence, "", "</details>");
  }
  return lines.join("\n");
}
