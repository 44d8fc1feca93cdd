import { describe, expect, it } from "vitest";
import { buildTaskOptions, gitLabBaseUrl } from "./build-task-options.js";
import { parseCliArguments, type RunCommandOptions } from "./cli-arguments.js";

const runOptions = (argv: string[], env: Record<string, string> = {}): RunCommandOptions => {
  const parsed = parseCliArguments(["run", "--task", "Fix it", ...argv], env);
  if (parsed.command !== "run") throw new Error("not a run command");
  return parsed.options;
};

describe("the Git host for a repository URL", () => {
  it.each([
    ["https://gitlab.com/group/sub/project.git", undefined, "https://gitlab.com"],
    ["https://www.gitlab.com/group/project", undefined, "https://gitlab.com"],
    ["https://gitlab.example.com/group/project", undefined, "https://gitlab.example.com"],
    ["https://git.example.com/gitlab/group/project", "https://git.example.com/gitlab", "https://git.example.com/gitlab"],
    ["https://github.com/octo/app", undefined, undefined],
    ["https://ghe.example.com/octo/app", undefined, undefined],
    ["https://notgitlab.com/octo/app", undefined, undefined],
  ])("%s with --gitlab-url %s is GitLab at %s", (repo, gitlabUrl, expected) => {
    expect(gitLabBaseUrl(repo, gitlabUrl)).toBe(expected);
  });

  it("builds a GitLab host with the GitLab token for gitlab.com, a GitHub host otherwise, and redacts both tokens", async () => {
    const gitlab = await buildTaskOptions(runOptions(["--repo", "https://gitlab.com/acme/platform/app.git"], { GITLAB_TOKEN: "glpat-cli", GITHUB_TOKEN: "ghp-cli" }));
    expect(gitlab.gitHost).toMatchObject({ hostId: "gitlab", endpoints: { webUrl: "https://gitlab.com" } });
    expect(gitlab.gitHost!.supports("https://gitlab.com/acme/platform/app.git")).toBe(true);
    expect(gitlab.gitHost!.secrets!()).toEqual(["glpat-cli"]);
    expect(gitlab.secrets).toEqual(["ghp-cli", "glpat-cli"]);
    const selfManaged = await buildTaskOptions(runOptions(["--repo", "https://git.example.com/gitlab/acme/app", "--gitlab-url", "https://git.example.com/gitlab"], { GITLAB_TOKEN: "glpat-cli" }));
    expect(selfManaged.gitHost).toMatchObject({ hostId: "gitlab", endpoints: { webUrl: "https://git.example.com/gitlab", apiUrl: "https://git.example.com/gitlab/api/v4" } });
    const github = await buildTaskOptions(runOptions(["--repo", "https://github.com/octo/app"], { GITHUB_TOKEN: "ghp-cli" }));
    expect(github.gitHost).toMatchObject({ hostId: "github" });
  });
});
