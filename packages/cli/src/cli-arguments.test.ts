import { describe, expect, it } from "vitest";
import { parseCliArguments, parseDuration } from "./cli-arguments.js";
import { UsageError } from "./usage-error.js";

const base = ["run", "--repo", "/tmp/repo.git", "--task", "Add tests"];

function usageMessage(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    parseCliArguments(argv, env);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error(`expected a usage error for ${argv.join(" ")}`);
}

describe("parseCliArguments", () => {
  it("reads every run flag, repeatable ones as lists", () => {
    const command = parseCliArguments(
      [
        ...base,
        "--base", "develop", "--branch", "feature/x", "--sandbox", "docker", "--image", "agent:1", "--network", "host",
        "--model", "openai-compatible/scripted", "--model-base-url", "http://127.0.0.1:9/v1", "--model-proxy", "--pool",
        "--draft", "--label", "bot", "--label", "tests", "--reviewer", "octocat",
        "--setup", "npm ci", "--setup", "npm run build", "--timeout", "20m", "--json",
        "--title", "Tests", "--github-api-url", "https://ghe.example.com/api/v3",
      ],
      {},
    );
    expect(command).toEqual({
      command: "run",
      options: {
        repo: "/tmp/repo.git",
        task: "Add tests",
        baseBranch: "develop",
        branch: "feature/x",
        sandbox: "docker",
        image: "agent:1",
        network: "host",
        unisolated: false,
        modelProxy: true,
        scriptedModel: false,
        pool: true,
        model: "openai-compatible/scripted",
        modelBaseUrl: "http://127.0.0.1:9/v1",
        draft: true,
        labels: ["bot", "tests"],
        reviewers: ["octocat"],
        setupCommands: ["npm ci", "npm run build"],
        timeoutMs: 20 * 60_000,
        json: true,
        title: "Tests",
        githubApiUrl: "https://ghe.example.com/api/v3",
      },
    });
  });

  it("defaults to the local sandbox and takes the token from GITHUB_TOKEN unless the flag is given", () => {
    const fromEnv = parseCliArguments(base, { GITHUB_TOKEN: "env-token" });
    expect(fromEnv).toMatchObject({ command: "run", options: { sandbox: "local", unisolated: false, modelProxy: false, pool: false, draft: false, json: false, labels: [], githubToken: "env-token" } });
    const fromFlag = parseCliArguments([...base, "--github-token", "flag-token"], { GITHUB_TOKEN: "env-token" });
    expect(fromFlag).toMatchObject({ options: { githubToken: "flag-token" } });
    expect(parseCliArguments(base, {})).not.toHaveProperty("options.githubToken");
  });

  it("takes --gitlab-url and the GitLab token from --gitlab-token or GITLAB_TOKEN", () => {
    const fromEnv = parseCliArguments([...base, "--gitlab-url", "https://git.example.com/gitlab"], { GITLAB_TOKEN: "glpat-env" });
    expect(fromEnv).toMatchObject({ options: { gitlabUrl: "https://git.example.com/gitlab", gitlabToken: "glpat-env" } });
    expect(parseCliArguments([...base, "--gitlab-token", "glpat-flag"], { GITLAB_TOKEN: "glpat-env" })).toMatchObject({ options: { gitlabToken: "glpat-flag" } });
    expect(parseCliArguments(base, {})).not.toHaveProperty("options.gitlabToken");
    expect(usageMessage([...base, "--gitlab-url", "ftp://git.example.com"])).toMatch(/--gitlab-url/);
    expect(usageMessage([...base, "--gitlab-token", " "])).toMatch(/--gitlab-token is empty/);
    expect(usageMessage([...base, "--scripted-model", "--model", "google/gemini-2.5-pro"])).toBe("--scripted-model is the model: leave out --model and --model-base-url.");
  });

  it("knows help and version", () => {
    expect(parseCliArguments(["--help"])).toEqual({ command: "help", topic: "main" });
    expect(parseCliArguments(["run", "--help"])).toEqual({ command: "help", topic: "run" });
    expect(parseCliArguments(["help", "run"])).toEqual({ command: "help", topic: "run" });
    expect(parseCliArguments(["--version"])).toEqual({ command: "version" });
  });

  it("says what is wrong with a bad command line", () => {
    expect(usageMessage([])).toMatch(/No command given/);
    expect(usageMessage(["deploy"])).toMatch(/Unknown command "deploy"/);
    expect(usageMessage(["run", "--task", "x"])).toMatch(/--repo is required/);
    expect(usageMessage(["run", "--repo", "/r"])).toMatch(/--task is required/);
    expect(usageMessage(["run", "--repo", "/r", "--task", "  "])).toMatch(/--task is empty/);
    expect(usageMessage([...base, "--rpeo", "x"])).toBe("Unknown option --rpeo. Did you mean --repo?");
    expect(usageMessage([...base, "--frobnicate"])).toBe("Unknown option --frobnicate.");
    expect(usageMessage(["run", "--repo"])).toBe("--repo needs a value.");
    expect(usageMessage([...base, "--json=yes"])).toBe("--json is a switch and takes no value.");
    expect(usageMessage([...base, "stray"])).toMatch(/Unexpected argument "stray"/);
    expect(usageMessage([...base, "--sandbox", "kubernetes"])).toMatch(/--sandbox must be one of local, docker, modal/);
    expect(usageMessage([...base, "--sandbox", "docker", "--unisolated"])).toMatch(/--unisolated applies only to --sandbox local/);
    expect(usageMessage([...base, "--image", "x"])).toMatch(/--image applies only/);
    expect(usageMessage([...base, "--network", "host"])).toMatch(/--network applies only to --sandbox docker/);
    expect(usageMessage([...base, "--model", "gemini"])).toMatch(/--model must be provider\/model/);
    expect(usageMessage([...base, "--model", "mistral/large"])).toMatch(/provider must be one of google, anthropic, openai, openai-compatible/);
    expect(usageMessage([...base, "--model-base-url", "http://127.0.0.1:1/v1"])).toMatch(/needs --model too/);
    expect(usageMessage([...base, "--model", "openai-compatible/m", "--model-base-url", "ftp://x"])).toMatch(/must be an http\(s\) URL/);
    expect(usageMessage([...base, "--github-api-url", "https://user:pw@ghe.example.com/api/v3"])).toMatch(/must not contain credentials/);
    expect(usageMessage([...base, "--label", ""])).toMatch(/--label needs a non-empty value/);
    expect(usageMessage([...base, "--github-token", ""])).toMatch(/--github-token is empty/);
    expect(usageMessage([...base, "--timeout", "soon"])).toMatch(/--timeout must be a positive duration/);
    expect(usageMessage([...base, "--prepared-cache", "/c"])).toMatch(/--prepared-cache keeps what --setup leaves: give --setup too/);
    expect(usageMessage([...base, "--sandbox", "docker", "--setup", "npm ci", "--prepared-cache", "/c"])).toMatch(/--prepared-cache applies only to --sandbox local/);
    expect(usageMessage([...base, "--setup", "npm ci", "--prepared-cache", " "])).toMatch(/--prepared-cache needs a non-empty value/);
  });

  it("reads checks as name=command, bare commands, or auto, with the fix-round options", () => {
    const parsed = parseCliArguments([...base, "--check", "test=npm test", "--check", "make lint", "--max-fix-rounds", "3", "--on-checks-failed", "fail"], {});
    expect(parsed).toMatchObject({
      options: { checks: [{ name: "test", command: "npm test" }, { name: "check-2", command: "make lint" }], maxFixRounds: 3, onChecksFailed: "fail" },
    });
    expect(parseCliArguments([...base, "--check", "auto"], {})).toMatchObject({ options: { checks: "auto" } });
    expect(usageMessage([...base, "--check", "auto", "--check", "x=y"])).toMatch(/give it alone/);
    expect(usageMessage([...base, "--check", "test="])).toMatch(/has no command/);
    expect(usageMessage([...base, "--check", "auto", "--max-fix-rounds", "11"])).toMatch(/from 0 to 10/);
    expect(usageMessage([...base, "--check", "auto", "--max-fix-rounds", "1.5"])).toMatch(/from 0 to 10/);
    expect(usageMessage([...base, "--check", "auto", "--on-checks-failed", "ignore"])).toMatch(/must be one of draft, fail, open/);
    expect(usageMessage([...base, "--max-fix-rounds", "1"])).toMatch(/need --check too/);
  });

  it("never puts the token into a usage message", () => {
    const message = usageMessage([...base, "--github-token", "ghp_secret", "--bogus"]);
    expect(message).not.toContain("ghp_secret");
  });
});

describe("parseDuration", () => {
  it("reads seconds by default and ms, s, m, h units", () => {
    expect(parseDuration("90")).toBe(90_000);
    expect(parseDuration("250ms")).toBe(250);
    expect(parseDuration("1.5m")).toBe(90_000);
    expect(parseDuration("2h")).toBe(7_200_000);
  });
  it("rejects zero, negatives and words", () => {
    for (const text of ["0", "-5", "5d", "", "m"]) expect(() => parseDuration(text)).toThrow(UsageError);
  });
});
