export {
  startGitLabServer,
  type CreateProjectOptions,
  type GitLabRequestRecord,
  type GitLabServer,
  type GitLabServerOptions,
  type InjectedFailure,
  type MergeRequestRecord,
  type TokenOptions,
} from "./start-gitlab-server.js";
export { AccessLevel, type Role } from "./gitlab-server-state.js";
export type { EventLabel, EventProject, EventUser, IssueHookPayload, IssueNoteHookPayload, WebhookDelivery } from "./gitlab-webhooks.js";
