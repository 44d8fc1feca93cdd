import { randomBytes } from "node:crypto";
import { Gitlab } from "@gitbeaker/rest";
import { testGitHost } from "@running-agent/core/testing";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createGitLab } from "./index.js";
import { startGitLabServer, type GitLabServer } from "./testing/index.js";

let server: GitLabServer;
let personalToken: string;
let groupToken: string;

beforeAll(async () => {
  server = await startGitLabServer();
  personalToken = server.createPersonalAccessToken("conformance-bot");
  server.addGroupMember("acme", "conformance-bot", "developer");
  groupToken = server.createGroupAccessToken("acme/platform", { role: "developer" });
});

afterAll(async () => {
  await server?.close();
});

/** Reads a merge request back through @gitbeaker/rest as it ships (its own fetch requester), as a user of GitLab would. */
async function readMergeRequest(_host: unknown, repository: { id: string }, number: number) {
  const client = new Gitlab({ host: server.url, token: personalToken });
  const data = (await client.MergeRequests.show(repository.id, number)) as unknown as { title: string; description: string; source_branch: string; target_branch: string; draft: boolean };
  return { title: data.title.replace(/^Draft:\s*/, ""), body: data.description, head: data.source_branch, base: data.target_branch, draft: data.draft };
}

const shared = {
  missingRepository: () => `${server.url}/acme/platform/does-not-exist.git`,
  unsupportedRepository: "https://github.com/octo/widgets.git",
  readChangeRequest: readMergeRequest,
};

testGitHost({
  name: "gitlab, personal access token, subgroup project (local GitLab-compatible server)",
  createHost: () => createGitLab({ token: personalToken, baseUrl: server.url }),
  createRepository: async () => {
    const { path } = await server.createProject({ path: `acme/platform/conformance-${randomBytes(4).toString("hex")}` });
    return { repo: `${server.url}/${path}.git`, defaultBranch: "main", cleanup: async () => undefined };
  },
  ...shared,
});

testGitHost({
  name: "gitlab, group access token (local GitLab-compatible server)",
  createHost: () => createGitLab({ token: groupToken, baseUrl: server.url }),
  createRepository: async () => {
    const { path } = await server.createProject({ path: `acme/platform/group-${randomBytes(4).toString("hex")}`, defaultBranch: "trunk" });
    return { repo: `${server.url}/${path}`, defaultBranch: "trunk", cleanup: async () => undefined };
  },
  ...shared,
});

it("cloned and pushed over git http-backend as the token's user and the group bot, with oauth2 as the username", () => {
  const pushes = server.requests.filter((record) => record.kind === "git" && record.path.endsWith("/git-receive-pack") && record.status === 200);
  expect(new Set(pushes.map((record) => record.username?.replace(/^group_\d+_bot_[0-9a-f]+$/, "group-bot")))).toEqual(new Set(["conformance-bot", "group-bot"]));
  expect(server.requests.filter((record) => record.kind === "api").every((record) => record.authorization === "private-token")).toBe(true);
});
