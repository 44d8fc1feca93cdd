import { readFile } from "node:fs/promises";
import { Octokit } from "@octokit/rest";
import { startScriptedModelServer, workingDirectoryOf } from "@running-agent/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixIssue } from "../examples/fix-issue.js";
import { startGitHubServer, type GitHubServer } from "./testing/index.js";

const readmeUrl = new URL("../README.md", import.meta.url);
const exampleUrl = new URL("../examples/fix-issue.ts", import.meta.url);

describe("README", () => {
  let server: GitHubServer;

  beforeAll(async () => {
    server = await startGitHubServer();
  });

  afterAll(async () => {
    await server?.close();
  });

  it("shows examples/fix-issue.ts verbatim", async () => {
    const readme = await readFile(readmeUrl, "utf8");
    const example = await readFile(exampleUrl, "utf8");
    const block = /<!-- examples\/fix-issue\.ts[^>]*-->\n```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBe(example);
  });

  it("runs the embedding snippet: the issue becomes a draft pull request that closes it", async () => {
    await server.createRepository({ owner: "octo", name: "greeter", files: { "greet.js": "export const greet = () => 'hi';\n" } });
    const token = server.grantToken({ login: "readme-bot" });
    const issue = server.createIssue("octo/greeter", { title: "Greet by name", body: "greet() should take a name.", user: "someone" });
    const content = "export const greet = (name) => `hi ${name}`;\n";
    await using model = await startScriptedModelServer({
      script: [(request) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/greet.js`, content } }] }), { text: "greet() takes a name now." }],
    });

    const pullRequest = await fixIssue({
      repo: "https://github.com/octo/greeter.git",
      issue: { number: issue, title: "Greet by name", body: "greet() should take a name." },
      github: { token, baseUrl: server.apiUrl, gitUrl: server.gitUrl, webUrl: "https://github.com" },
      model: { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: "test-key" },
    });

    expect(pullRequest).toMatchObject({ created: true, draft: true, base: "main", title: "Greet by name" });
    const { data } = await new Octokit({ baseUrl: server.apiUrl, auth: token }).rest.pulls.get({ owner: "octo", repo: "greeter", pull_number: pullRequest!.number });
    expect(data.labels.map((label) => label.name)).toEqual(["agent"]);
    expect(data.body).toContain(`Closes #${issue}`);
    expect(await server.readFile("octo/greeter", pullRequest!.head, "greet.js")).toBe(content);
  });
});
