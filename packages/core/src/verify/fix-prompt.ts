import type { CheckRound } from "./check-types.js";

/** The total size of check output sent back to the agent in one message. */
const MAX_FEEDBACK_CHARS = 12_000;

/**
 * The message that hands failed checks back to the agent: which checks failed, how, and the tail
 * of their (already redacted) output, bounded in total.
 */
export function fixPrompt(round: CheckRound, fixRound: number, maxFixRounds: number): string {
  const failed = round.checks.filter((check) => !check.passed);
  const share = Math.max(500, Math.floor(MAX_FEEDBACK_CHARS / Math.max(1, failed.length)));
  const sections = failed.map((check) => {
    const how = check.timedOut ? "was stopped by its time limit" : `exited with code ${check.exitCode}`;
    const output = check.outputTail.slice(-share).trim() || "(no output)";
    return `### ${check.name}: \`${check.command}\` ${how}\n\n\`\`\`\n${output}\n\`\`\``;
  });
  return [
    `Your changes were checked and ${failed.length === 1 ? "1 check fails" : `${failed.length} checks fail`} (fix round ${fixRound} of ${maxFixRounds}).`,
    "Fix the code so that every check passes. Do not weaken, skip or delete the checks or the tests themselves.",
    "",
    ...sections,
  ].join("\n");
}
