import { describe, expect, it } from "vitest";
import { defaultConcurrency } from "@running-agent/jobs";
import { loadServerConfig } from "./server-config.js";

describe("loadServerConfig", () => {
  it("defaults to the embedded local parts and the offline model", () => {
    expect(loadServerConfig({})).toMatchObject({
      host: "127.0.0.1",
      port: 8787,
      apiKey: undefined,
      concurrency: defaultConcurrency(),
      role: "both",
      databaseUrl: undefined,
      bodyLimitBytes: 65536,
      sandbox: "local",
      gitHost: "local",
      model: "scripted",
    });
  });

  it("uses core's default model when GEMINI_API_KEY is set, and an explicit model over both", () => {
    expect(loadServerConfig({ GEMINI_API_KEY: "g" }).model).toBeUndefined();
    expect(loadServerConfig({ GEMINI_API_KEY: "g", RUNNING_AGENT_MODEL: "anthropic/claude-sonnet-4-5" }).model).toBe("anthropic/claude-sonnet-4-5");
  });

  it("treats empty variables as unset and reads the rest", () => {
    const config = loadServerConfig({ PORT: "", RUNNING_AGENT_API_KEY: "", RUNNING_AGENT_CONCURRENCY: "4", RUNNING_AGENT_GIT_HOST: "github", GITHUB_API_URL: "http://127.0.0.1:9/api/v3" });
    expect(config).toMatchObject({ port: 8787, apiKey: undefined, concurrency: 4, gitHost: "github", github: { apiUrl: "http://127.0.0.1:9/api/v3" } });
  });

  it("takes GitLab as the Git host, with its token and a self-managed instance's URL", () => {
    expect(loadServerConfig({ RUNNING_AGENT_GIT_HOST: "gitlab", GITLAB_TOKEN: "glpat-x", GITLAB_URL: "https://git.example.com/gitlab" })).toMatchObject({ gitHost: "gitlab", gitlab: { token: "glpat-x", url: "https://git.example.com/gitlab" } });
    expect(() => loadServerConfig({ RUNNING_AGENT_GIT_HOST: "gitlab", GITLAB_URL: "not a url" })).toThrow(/GITLAB_URL must be a URL/);
  });

  it("sizes concurrency from free memory, about 0.5 GB per running OpenCode", () => {
    const gib = 1024 ** 3;
    expect([defaultConcurrency(0), defaultConcurrency(0.4 * gib), defaultConcurrency(3.2 * gib), defaultConcurrency(64 * gib)]).toEqual([1, 1, 6, 16]);
  });

  it("takes DATABASE_URL for several processes; roles other than both need it", () => {
    expect(loadServerConfig({ DATABASE_URL: "postgres://u@127.0.0.1:5432/jobs", RUNNING_AGENT_ROLE: "worker" })).toMatchObject({ databaseUrl: "postgres://u@127.0.0.1:5432/jobs", role: "worker" });
    expect(() => loadServerConfig({ RUNNING_AGENT_ROLE: "api" })).toThrow(/RUNNING_AGENT_ROLE: role api needs DATABASE_URL/);
    expect(() => loadServerConfig({ DATABASE_URL: "mysql://x" })).toThrow(/DATABASE_URL must be a postgres/);
  });

  it("reads the sandbox pool's size and idle time (none by default)", () => {
    expect(loadServerConfig({}).pool).toEqual({ size: 0, idleTimeoutMs: undefined });
    expect(loadServerConfig({ RUNNING_AGENT_POOL_SIZE: "2", RUNNING_AGENT_POOL_IDLE_MS: "60000" }).pool).toEqual({ size: 2, idleTimeoutMs: 60_000 });
    expect(() => loadServerConfig({ RUNNING_AGENT_POOL_SIZE: "-1" })).toThrow(/RUNNING_AGENT_POOL_SIZE: .*at least 0/);
    expect(() => loadServerConfig({ RUNNING_AGENT_POOL_SIZE: "100" })).toThrow(/RUNNING_AGENT_POOL_SIZE: .*at most 32/);
  });

  it("reads which advanced submit fields are accepted (base branch, draft and labels by default; no model choice)", () => {
    expect(loadServerConfig({}).submitFields).toEqual({ baseBranch: true, draft: true, labels: true, models: [] });
    expect(loadServerConfig({ RUNNING_AGENT_SUBMIT_FIELDS: "none", RUNNING_AGENT_MODELS: "google/gemini-2.5-pro,anthropic/claude-sonnet-4" }).submitFields).toEqual({
      baseBranch: false,
      draft: false,
      labels: false,
      models: ["google/gemini-2.5-pro", "anthropic/claude-sonnet-4"],
    });
    expect(loadServerConfig({ RUNNING_AGENT_SUBMIT_FIELDS: "labels" }).submitFields).toMatchObject({ baseBranch: false, draft: false, labels: true });
    expect(() => loadServerConfig({ RUNNING_AGENT_SUBMIT_FIELDS: "labels,model" })).toThrow(/RUNNING_AGENT_SUBMIT_FIELDS must be none or/);
    expect(() => loadServerConfig({ RUNNING_AGENT_MODELS: "gemini" })).toThrow(/RUNNING_AGENT_MODELS must be a comma-separated list of provider\/model/);
  });

  it("names every bad variable", () => {
    expect(() =>
      loadServerConfig({ PORT: "eighty", RUNNING_AGENT_CONCURRENCY: "0", RUNNING_AGENT_SANDBOX: "podman", RUNNING_AGENT_API_KEY: "short", GITHUB_API_URL: "not a url" }),
    ).toThrow(
      /PORT: PORT must be a number.*RUNNING_AGENT_API_KEY: .*at least 8.*RUNNING_AGENT_CONCURRENCY: .*at least 1.*RUNNING_AGENT_SANDBOX: RUNNING_AGENT_SANDBOX must be local, local-unisolated, docker or modal\..*GITHUB_API_URL: GITHUB_API_URL must be a URL/,
    );
  });

  it("reads the Docker sandbox's image and network, and refuses the scripted model without host networking", () => {
    expect(loadServerConfig({ RUNNING_AGENT_SANDBOX: "docker", RUNNING_AGENT_DOCKER_NETWORK: "host" })).toMatchObject({ sandbox: "docker", docker: { image: undefined, network: "host" } });
    expect(loadServerConfig({ RUNNING_AGENT_SANDBOX: "docker", RUNNING_AGENT_MODEL: "google/gemini-2.5-pro", RUNNING_AGENT_DOCKER_IMAGE: "my/image:1", RUNNING_AGENT_DOCKER_NETWORK: "egress-filtered" }).docker).toEqual({
      image: "my/image:1",
      network: { name: "egress-filtered" },
    });
    expect(() => loadServerConfig({ RUNNING_AGENT_SANDBOX: "docker" })).toThrow(/RUNNING_AGENT_DOCKER_NETWORK: the scripted model listens on this machine's loopback.*RUNNING_AGENT_DOCKER_NETWORK=host/);
    expect(() => loadServerConfig({ RUNNING_AGENT_SANDBOX: "docker", RUNNING_AGENT_DOCKER_NETWORK: "--privileged" })).toThrow(/must be bridge, host, none or the name of a Docker network/);
  });

  it("reads protected reads and the request timeouts, and refuses protected reads without a key", () => {
    expect(loadServerConfig({})).toMatchObject({ protectReads: false, headersTimeoutMs: 10_000, requestTimeoutMs: 30_000 });
    expect(loadServerConfig({ RUNNING_AGENT_API_KEY: "a-long-key", RUNNING_AGENT_PROTECT_READS: "true", RUNNING_AGENT_HEADERS_TIMEOUT_MS: "2000", RUNNING_AGENT_REQUEST_TIMEOUT_MS: "5000" })).toMatchObject({
      protectReads: true,
      headersTimeoutMs: 2000,
      requestTimeoutMs: 5000,
    });
    expect(() => loadServerConfig({ RUNNING_AGENT_PROTECT_READS: "1" })).toThrow(/RUNNING_AGENT_PROTECT_READS: protecting the read endpoints needs RUNNING_AGENT_API_KEY/);
    expect(() => loadServerConfig({ RUNNING_AGENT_PROTECT_READS: "yes" })).toThrow(/must be true or false/);
    expect(() => loadServerConfig({ RUNNING_AGENT_HEADERS_TIMEOUT_MS: "60000", RUNNING_AGENT_REQUEST_TIMEOUT_MS: "30000" })).toThrow(/RUNNING_AGENT_HEADERS_TIMEOUT_MS: must not be longer/);
  });

  it("reads the prepared repositories (none by default) and names what is wrong in an entry", () => {
    expect(loadServerConfig({}).preparedRepos).toEqual([]);
    expect(loadServerConfig({ RUNNING_AGENT_PREPARED_REPOS: JSON.stringify([{ repo: "/srv/repos/a.git", setup: ["npm ci"] }, { repo: "/srv/repos/b.git", setup: ["make", "make test"], baseBranch: "develop", everyMs: 60_000 }]) }).preparedRepos).toEqual([
      { repo: "/srv/repos/a.git", setup: ["npm ci"], baseBranch: undefined, everyMs: 1_800_000, pool: 0 },
      { repo: "/srv/repos/b.git", setup: ["make", "make test"], baseBranch: "develop", everyMs: 60_000, pool: 0 },
    ]);
    // A pool per prepared repository: RUNNING_AGENT_POOL_SIZE unless the entry says otherwise.
    expect(loadServerConfig({ RUNNING_AGENT_POOL_SIZE: "2", RUNNING_AGENT_PREPARED_REPOS: JSON.stringify([{ repo: "/a", setup: ["x"] }, { repo: "/b", setup: ["x"], pool: 0 }]) }).preparedRepos.map((entry) => entry.pool)).toEqual([2, 0]);
    const bad = (value: unknown) => () => loadServerConfig({ RUNNING_AGENT_PREPARED_REPOS: typeof value === "string" ? value : JSON.stringify(value) });
    expect(bad("repo=a")).toThrow(/RUNNING_AGENT_PREPARED_REPOS: RUNNING_AGENT_PREPARED_REPOS must be JSON/);
    expect(bad({ repo: "/a" })).toThrow(/RUNNING_AGENT_PREPARED_REPOS: RUNNING_AGENT_PREPARED_REPOS must be a JSON list of repositories/);
    expect(bad([{ repo: "/a", setup: [] }])).toThrow(/RUNNING_AGENT_PREPARED_REPOS\.0\.setup: setup needs at least one command/);
    expect(bad([{ repo: "/a", setup: "npm ci" }])).toThrow(/RUNNING_AGENT_PREPARED_REPOS\.0\.setup: setup must be a list of commands/);
    expect(bad([{ repo: "/a", setup: ["x"], everyMs: 10 }])).toThrow(/RUNNING_AGENT_PREPARED_REPOS\.0\.everyMs: everyMs must be at least 1000/);
    expect(bad([{ repo: "/a", setup: ["x"], pool: 33 }])).toThrow(/RUNNING_AGENT_PREPARED_REPOS\.0\.pool: pool must be at most 32/);
    expect(bad([{ repo: "/a", setup: ["x"], pool: 1.5 }])).toThrow(/RUNNING_AGENT_PREPARED_REPOS\.0\.pool: pool must be a whole number/);
    expect(bad([{ repo: "/a", setup: ["x"], branch: "main" }])).toThrow(/RUNNING_AGENT_PREPARED_REPOS\.0: Unrecognized key: "branch"/);
    expect(bad([{ repo: "/a", setup: ["x"] }, { repo: "/a/", setup: ["y"] }])).toThrow(/RUNNING_AGENT_PREPARED_REPOS\.1\.repo: \/a\/ is listed twice/);
  });
});
