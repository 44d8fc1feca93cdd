export { createGitHub, GitHub } from "./create-github.js";
export type { GitHubAppSettings, GitHubSettings, OctokitOptions } from "./github-settings.js";
export type { GitHubEndpoints } from "./github-endpoints.js";
