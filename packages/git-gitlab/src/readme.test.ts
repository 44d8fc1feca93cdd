import { readFile } from "node:fs/promises";
import { Gitlab } from "@gitbeaker/rest";
import { startScriptedModelServer, workingDirectoryOf } from "@running-agent/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixIssue } from "../examples/fix-issue.js";
import { startGitLabServer, type GitLabServer } from "./testing/index.js";

const readmeUrl = new URL("../README.md", import.meta.url);
const exampleUrl = new URL("../examples/fix-issue.ts", import.meta.url);

describe("README", () => {
  let server: GitLabServer;

  beforeAll(async () => {
    server = await startGitLabServer();
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

  it("runs the embedding snippet: the issue becomes a draft merge request that closes it", async () => {
    await server.createProject({ path: "acme/web/greeter", files: { "greet.js": "export const greet = () => 'hi';\n" }, members: { "readme-bot": "developer" } });
    const token = server.createPersonalAccessToken("readme-bot");
    const content = "export const greet = (name) => `hi ${name}`;\n";
    await using model = await startScriptedModelServer({
      script: [(request) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/greet.js`, content } }] }), { text: "greet() takes a name now." }],
    });

    const mergeRequest = await fixIssue({
      repo: `${server.url}/acme/web/greeter.git`,
      issue: { iid: 3, title: "Greet by name", description: "greet() should take a name." },
      gitlab: { token, baseUrl: server.url },
      model: { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: "test-key" },
    });

    expect(mergeRequest).toMatchObject({ created: true, draft: true, base: "main", title: "Greet by name" });
    const data = await new Gitlab({ host: server.url, token }).MergeRequests.show("acme/web/greeter", mergeRequest!.number);
    expect(data).toMatchObject({ title: "Draft: Greet by name", labels: ["agent"], draft: true });
    expect(data.description).toContain("Closes #3");
    expect(await server.readFile("acme/web/greeter", mergeRequest!.head, "greet.js")).toBe(content);
  });
});
