import { runAgentTask, type ModelConfig } from "@running-agent/core";
import { createGitLab, type GitLabSettings } from "@running-agent/git-gitlab";

/** Asks the agent to resolve a GitLab issue and returns the merge request it opened (or updated). */
export async function fixIssue(options: {
  repo: string; // "https://gitlab.com/GROUP/SUBGROUP/PROJECT.git"
  issue: { iid: number; title: string; description: string };
  gitlab: GitLabSettings; // { token }, plus baseUrl for a self-managed instance
  model: ModelConfig; // e.g. { provider: "google", model: "gemini-2.5-pro", apiKey }
}) {
  const result = await runAgentTask({
    repo: options.repo,
    task: `${options.issue.title}\n\n${options.issue.description}`,
    gitHost: createGitLab(options.gitlab),
    model: options.model,
    pullRequest: { draft: true, labels: ["agent"], closesIssue: options.issue.iid },
  });
  return result.pullRequest; // { number: the MR's iid, url, head, base, title, body, draft, created }
}
