export {
  startGitHubServer,
  type CommentRecord,
  type CreateAppOptions,
  type CreatedApp,
  type CreatedRepository,
  type CreateRepositoryOptions,
  type GitHubRequestRecord,
  type GitHubServer,
  type GitHubServerOptions,
  type GrantTokenOptions,
  type InjectedFailure,
  type PullRequestRecord,
  type ReactionRecord,
} from "./start-github-server.js";
export type { CommitIdentity, FileContent } from "./git-plumbing.js";
export type { RepositoryPermission } from "./github-server-model.js";
