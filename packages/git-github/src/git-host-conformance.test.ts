import { randomBytes } from "node:crypto";
import { testGitHost } from "@running-agent/core/testing";
import { Octokit } from "@octokit/rest";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createGitHub } from "./index.js";
import { startGitHubServer, type CreatedApp, type GitHubServer } from "./testing/index.js";

let server: GitHubServer;
let token: string;
let app: CreatedApp;

beforeAll(async () => {
  server = await startGitHubServer();
  token = server.grantToken({ login: "conformance-bot", permission: "push" });
  app = server.createApp({ account: "octo", slug: "conformance-app" });
});

afterAll(async () => {
  await server?.close();
});

const shared = {
  createRepository: async () => {
    const name = `conformance-${randomBytes(4).toString("hex")}`;
    await server.createRepository({ owner: "octo", name, defaultBranch: "main", files: { "README.md": "# Conformance\n" } });
    return { repo: `https://github.com/octo/${name}.git`, defaultBranch: "main", cleanup: async () => undefined };
  },
  missingRepository: () => "https://github.com/octo/does-not-exist.git",
  unsupportedRepository: "https://gitlab.com/octo/widgets.git",
  readChangeRequest: async (_host: unknown, repository: { id: string }, number: number) => {
    const [owner, repo] = repository.id.split("/") as [string, string];
    const { data } = await new Octokit({ baseUrl: server.apiUrl, auth: token }).rest.pulls.get({ owner, repo, pull_number: number });
    return { title: data.title, body: data.body ?? "", head: data.head.ref, base: data.base.ref, draft: data.draft ?? false };
  },
};

// Clones and pushes with an installation token from @octokit/auth-app.
testGitHost({
  name: "github App installation (local GitHub-compatible server)",
  createHost: () => createGitHub({ app: { appId: app.appId, privateKey: app.privateKey, installationId: app.installationId }, baseUrl: server.apiUrl, gitUrl: server.gitUrl, webUrl: "https://github.com" }),
  ...shared,
});

testGitHost({
  name: "github (local GitHub-compatible server)",
  // github.com URLs, served by the local server through baseUrl and gitUrl.
  createHost: () => createGitHub({ token, baseUrl: server.apiUrl, gitUrl: server.gitUrl, webUrl: "https://github.com" }),
  ...shared,
});

it("pushed over git http-backend as the App's bot and as the token's user", () => {
  const pushers = server.requests.filter((record) => record.kind === "git" && record.path.endsWith("/git-receive-pack") && record.status === 200).map((record) => record.login);
  expect(new Set(pushers)).toEqual(new Set(["conformance-app[bot]", "conformance-bot"]));
});
