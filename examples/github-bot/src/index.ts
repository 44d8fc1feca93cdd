export { createGitHubBot, type GitHubBot, type GitHubBotOptions } from "./github-bot.js";
export { ProgressComment } from "./progress-comment.js";
export { triggerFromComment, triggerFromLabel, type IssueTarget, type TaskTrigger, type TriggerSettings } from "./task-trigger.js";
