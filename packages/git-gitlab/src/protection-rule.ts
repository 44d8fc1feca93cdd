/**
 * A protected-branch rule's name as an anchored regular expression: the name exactly, with each
 * `*` standing for any characters (`/` too), as GitLab matches wildcard rules such as `release/*`.
 * JavaScript and POSIX awk read the pattern alike.
 */
export function protectionRulePattern(rule: string): string {
  return `^${rule
    .split("*")
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*")}$`;
}

/** Whether a protected-branch rule covers a branch. */
export function protectionRuleCovers(rule: string, branch: string): boolean {
  return new RegExp(protectionRulePattern(rule)).test(branch);
}
