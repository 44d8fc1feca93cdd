import { Octokit } from "@octokit/rest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "@running-agent/core";
import { createGitHub } from "@running-agent/git-github";
import { startGitHubServer, type GitHubServer } from "@running-agent/git-github/testing";
import { followUpGitHost } from "./follow-up-git-host.js";

describe("followUpGitHost", () => {
  let github: GitHubServer;
  let octokit: Octokit;
  let token: string;
  const target = { owner: "octo", repo: "app", cloneUrl: "", issueNumber: 0 };

  beforeAll(async () => {
    github = await startGitHubServer();
    target.cloneUrl = (await github.createRepository({ owner: "octo", name: "app", files: { "README.md": "# app\n" } })).cloneUrl;
    token = github.grantToken({ login: "agent-bot", permission: "push", repositories: ["octo/app"] });
    octokit = new Octokit({ baseUrl: github.apiUrl, auth: token });
  });
  afterAll(() => github.close());

  async function pullRequestOn(branch: string, draft: boolean) {
    await github.commit("octo/app", { branch, files: { [`${branch}.md`]: "text\n" } });
    const { data } = await octokit.rest.pulls.create({ owner: "octo", repo: "app", head: branch, base: "main", title: `Work on ${branch}`, body: "Written by a person.", draft });
    const followUp = { number: data.number, head: branch, base: "main" };
    const host = followUpGitHost(createGitHub({ token, baseUrl: github.apiUrl }), octokit, target, followUp);
    const repository = await host.resolveRepository(target.cloneUrl);
    const input = { head: branch, base: "main", title: "The follow-up's title", body: "The follow-up's body", draft: false, labels: ["agent"] };
    return { followUp, host, repository, input };
  }

  it("answers with the pull request as it is: not retitled, not undrafted, nothing added", async () => {
    const { followUp, host, repository, input } = await pullRequestOn("draft-work", true);
    const requestsBefore = github.requests.length;
    expect(await host.openChangeRequest(repository, input)).toEqual({
      number: followUp.number,
      url: expect.stringMatching(new RegExp(`/octo/app/pull/${followUp.number}$`)),
      head: "draft-work",
      base: "main",
      title: "Work on draft-work",
      body: "Written by a person.",
      draft: true,
      created: false,
    });
    expect(github.requests.slice(requestsBefore).map((request) => `${request.method} ${request.route}`)).toEqual(["GET /repos/{owner}/{repo}/pulls/{pull_number}"]);
    expect(github.pullRequests("octo/app").find((pull) => pull.number === followUp.number)).toMatchObject({ title: "Work on draft-work", draft: true, labels: [] });
  });

  it("fails with PUSH_REJECTED when the commit went to another branch, and PULL_REQUEST_FAILED when the pull request was closed meanwhile", async () => {
    const { followUp, host, repository, input } = await pullRequestOn("moving", false);
    await expect(host.openChangeRequest(repository, { ...input, head: "moving-a1b2c3" })).rejects.toMatchObject({
      code: ErrorCode.PUSH_REJECTED,
      message: expect.stringContaining(`its commit went to moving-a1b2c3 instead`),
    });
    await octokit.rest.pulls.update({ owner: "octo", repo: "app", pull_number: followUp.number, state: "closed" });
    await expect(host.openChangeRequest(repository, input)).rejects.toMatchObject({
      code: ErrorCode.PULL_REQUEST_FAILED,
      message: `Pull request #${followUp.number} was closed while the agent worked; the commit is on moving.`,
    });
    expect(github.pullRequests("octo/app")).toHaveLength(2);
  });
});
