import { randomBytes } from "node:crypto";
import { testGitHost } from "@running-agent/core/testing";
import { Octokit } from "@octokit/rest";
import { afterAll, beforeAll } from "vitest";
import { createGitHub } from "./index.js";
import { startGitHubServer, type GitHubServer } from "./testing/index.js";

let server: GitHubServer;
let token: string;

beforeAll(async () => {
  server = await startGitHubServer();
  token = server.grantToken({ login: "conformance-bot", permission: "push" });
});

afterAll(async () => {
  await server?.close();
});

testGitHost({
  name: "github (local GitHub-compatible server)",
  // github.com URLs, served by the local server through baseUrl and gitUrl.
  createHost: () => createGitHub({ token, baseUrl: server.apiUrl, gitUrl: server.gitUrl, webUrl: "https://github.com" }),
  createRepository: async () => {
    const name = `conformance-${randomBytes(4).toString("hex")}`;
    await server.createRepository({ owner: "octo", name, defaultBranch: "main", files: { "README.md": "# Conformance\n" } });
    return { repo: `https://github.com/octo/${name}.git`, defaultBranch: "main", cleanup: async () => undefined };
  },
  missingRepository: () => "https://github.com/octo/does-not-exist.git",
  unsupportedRepository: "https://gitlab.com/octo/widgets.git",
  readChangeRequest: async (_host, repository, number) => {
    const [owner, repo] = repository.id.split("/") as [string, string];
    const { data } = await new Octokit({ baseUrl: server.apiUrl, auth: token }).rest.pulls.get({ owner, repo, pull_number: number });
    return { title: data.title, body: data.body ?? "", head: data.head.ref, base: data.base.ref, draft: data.draft ?? false };
  },
});
