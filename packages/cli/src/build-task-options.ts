import { resolve } from "node:path";
import { createLocalSandbox, createPreparedStateCache, createSandboxPool, ErrorCode, latestPreparedState, type AgentTaskOptions, type GitHost, type ModelConfig, type SandboxProvider } from "@running-agent/core";
import type { RunCommandOptions } from "./cli-arguments.js";
import { importAdapter } from "./import-adapter.js";

/**
 * Turns the command line into `startAgentTask` options: picks the sandbox and the Git host
 * (loading their adapter packages only when asked for), the model and the pull request details.
 * `scriptedModel` (the `--scripted-model` server's config) takes the place of `--model`.
 */
export async function buildTaskOptions(options: RunCommandOptions, scriptedModel?: ModelConfig): Promise<AgentTaskOptions> {
  const gitHost = await createGitHost(options);
  const model = scriptedModel ?? (options.model ? modelConfig(options.model, options.modelBaseUrl) : undefined);
  const provider = await createSandbox(options);
  // With --prepared-cache the pooled sandbox starts from the newest kept state of this repository and
  // setup (the task brings in what changed since its commit); none kept, or a bad repo the task will
  // report: an empty workspace, as without the cache.
  const prepared =
    options.pool && options.preparedCache && options.setupCommands.length > 0
      ? await latestPreparedState({ repo: options.repo, sandbox: provider, setupCommands: options.setupCommands, ...(gitHost ? { gitHost } : {}) }).catch(() => undefined)
      : undefined;
  // The pool warms OpenCode for the same model, key and proxy setting as the task, so the task takes its sandbox.
  const sandbox = options.pool ? createSandboxPool(provider, { size: 1, refill: false, ...(model ? { model } : {}), ...(options.modelProxy ? { modelProxy: true } : {}), ...(prepared ? { prepared } : {}) }) : provider;
  return {
    repo: options.repo,
    task: options.task,
    sandbox,
    ...(gitHost ? { gitHost } : {}),
    ...(options.baseBranch ? { baseBranch: options.baseBranch } : {}),
    ...(options.branch ? { branch: options.branch } : {}),
    ...(model ? { model } : {}),
    ...(options.setupCommands.length > 0 ? { setupCommands: options.setupCommands } : {}),
    ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.checks !== undefined ? { checks: options.checks } : {}),
    ...(options.maxFixRounds !== undefined ? { maxFixRounds: options.maxFixRounds } : {}),
    ...(options.onChecksFailed !== undefined ? { onChecksFailed: options.onChecksFailed } : {}),
    ...(options.modelProxy ? { modelProxy: true } : {}),
    pullRequest: {
      draft: options.draft,
      ...(options.title ? { title: options.title } : {}),
      ...(options.labels.length > 0 ? { labels: options.labels } : {}),
      ...(options.reviewers.length > 0 ? { reviewers: options.reviewers } : {}),
    },
    // The redactor then keeps the tokens out of every event, error and PR body.
    ...(options.githubToken || options.gitlabToken ? { secrets: [options.githubToken, options.gitlabToken].filter((token): token is string => Boolean(token)) } : {}),
  };
}

async function createSandbox(options: RunCommandOptions): Promise<SandboxProvider> {
  switch (options.sandbox) {
    case "local":
      return createLocalSandbox({
        isolation: options.unisolated ? "none" : "bubblewrap",
        ...(options.preparedCache ? { preparedStates: createPreparedStateCache({ directory: resolve(options.preparedCache) }) } : {}),
      });
    case "docker": {
      const { createDockerSandbox } = await importAdapter("@running-agent/sandbox-docker", ErrorCode.SANDBOX_UNAVAILABLE, () => import("@running-agent/sandbox-docker"));
      const network = options.network === undefined ? undefined : ["bridge", "host", "none"].includes(options.network) ? (options.network as "bridge" | "host" | "none") : { name: options.network };
      return createDockerSandbox({ ...(options.image ? { image: options.image } : {}), ...(network ? { network } : {}) });
    }
    case "modal": {
      const { createModalSandbox } = await importAdapter("@running-agent/sandbox-modal", ErrorCode.SANDBOX_UNAVAILABLE, () => import("@running-agent/sandbox-modal"));
      // Modal names its own images `im-...`; anything else is a registry tag for Modal to build from.
      const image = options.image === undefined ? undefined : options.image.startsWith("im-") ? { imageId: options.image } : { registryTag: options.image };
      return createModalSandbox(image ? { image } : {});
    }
  }
}

/** Local paths use the core's local Git host (the default); http(s) URLs use GitLab (see {@link gitLabBaseUrl}) or GitHub. */
async function createGitHost(options: RunCommandOptions): Promise<GitHost | undefined> {
  if (!/^https?:\/\//i.test(options.repo.trim())) return undefined;
  const gitlabUrl = gitLabBaseUrl(options.repo, options.gitlabUrl);
  if (gitlabUrl !== undefined) {
    const { createGitLab } = await importAdapter("@running-agent/git-gitlab", ErrorCode.UNSUPPORTED_REPO, () => import("@running-agent/git-gitlab"));
    return createGitLab({ baseUrl: gitlabUrl, ...(options.gitlabToken ? { token: options.gitlabToken } : {}) });
  }
  const { createGitHub } = await importAdapter("@running-agent/git-github", ErrorCode.UNSUPPORTED_REPO, () => import("@running-agent/git-github"));
  return createGitHub({
    ...(options.githubToken ? { token: options.githubToken } : {}),
    ...(options.githubApiUrl ? { baseUrl: options.githubApiUrl } : {}),
  });
}

/**
 * The GitLab instance a repository URL is on: `--gitlab-url` when given (a self-managed
 * instance, possibly under a path), else the URL's origin when its host is gitlab.com or is
 * named `gitlab.*`. Undefined for every other host (GitHub's).
 */
export function gitLabBaseUrl(repo: string, gitlabUrl: string | undefined): string | undefined {
  if (gitlabUrl !== undefined) return gitlabUrl;
  let url: URL;
  try {
    url = new URL(repo.trim());
  } catch {
    return undefined;
  }
  return url.hostname === "gitlab.com" || url.hostname === "www.gitlab.com" || url.hostname.startsWith("gitlab.") ? url.origin.replace("://www.", "://") : undefined;
}

function modelConfig(model: string, baseUrl: string | undefined): ModelConfig | string {
  if (baseUrl === undefined) return model;
  const slash = model.indexOf("/");
  return { provider: model.slice(0, slash) as ModelConfig["provider"], model: model.slice(slash + 1), baseURL: baseUrl };
}
