export { createGitLab, GitLab } from "./create-gitlab.js";
export type { GitLabSettings } from "./gitlab-settings.js";
export type { GitLabEndpoints } from "./gitlab-endpoints.js";
