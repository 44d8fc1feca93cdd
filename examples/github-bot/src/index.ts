export { createGitHubBot, type GitHubBot, type GitHubBotOptions } from "./github-bot.js";
export { ProgressComment } from "./progress-comment.js";
export { followUpGitHost } from "./follow-up-git-host.js";
export {
  triggerFromComment,
  triggerFromLabel,
  triggerFromPullRequest,
  type IssueTarget,
  type PullRequestFacts,
  type PullRequestFollowUp,
  type TaskTrigger,
  type TriggerSettings,
} from "./task-trigger.js";
export { createGitLabBot, triggerFromLabel as gitLabTriggerFromLabel, triggerFromNote as gitLabTriggerFromNote, type GitLabBot, type GitLabBotOptions } from "./gitlab-bot.js";
