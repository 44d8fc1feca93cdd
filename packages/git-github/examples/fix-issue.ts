import { runAgentTask, type AgentTaskEvent, type ModelConfig } from "@running-agent/core";
import { createGitHub, type GitHubSettings } from "@running-agent/git-github";

/** Asks the agent to resolve a GitHub issue and returns the pull request it opened (or updated). */
export async function fixIssue(options: {
  repo: string; // "https://github.com/OWNER/REPO.git"
  issue: { number: number; title: string; body: string };
  github: GitHubSettings; // { token } or { app: { appId, privateKey, installationId } }, plus baseUrl for GitHub Enterprise Server
  model: ModelConfig; // e.g. { provider: "google", model: "gemini-2.5-pro", apiKey }
  onEvent?: (event: AgentTaskEvent) => void;
}) {
  const result = await runAgentTask({
    repo: options.repo,
    task: `${options.issue.title}\n\n${options.issue.body}`,
    gitHost: createGitHub(options.github),
    model: options.model,
    pullRequest: { draft: true, labels: ["agent"], closesIssue: options.issue.number },
    onEvent: options.onEvent,
  });
  return result.pullRequest; // { number, url, head, base, title, body, draft, created }
}
