import { readFile } from "node:fs/promises";
import { createTestRepository, startScriptedModelServer, workingDirectoryOf } from "@running-agent/core/testing";
import { describe, expect, it } from "vitest";
import { runInDocker } from "../examples/run-in-docker.js";
import { MANAGED_LABEL } from "./create-docker-sandbox.js";
import { docker, TEST_BASE_IMAGE } from "./test-engine.js";

const readmeUrl = new URL("../README.md", import.meta.url);
const exampleUrl = new URL("../examples/run-in-docker.ts", import.meta.url);

describe("README", () => {
  it("shows examples/run-in-docker.ts verbatim", async () => {
    const readme = await readFile(readmeUrl, "utf8");
    const block = /<!-- examples\/run-in-docker\.ts[^>]*-->\n```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBe(await readFile(exampleUrl, "utf8"));
  });

  it("runs the snippet: the task's change is pushed and its container is gone", async () => {
    await using repo = await createTestRepository({ "notes.txt": "one\n" });
    await using model = await startScriptedModelServer({
      script: [(request) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/notes.txt`, content: "one\ntwo\n" } }] }), { text: "Added two." }],
    });
    const result = await runInDocker({
      repo: repo.path,
      task: "Add a line 'two' to notes.txt",
      model: { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: "k" },
      baseImage: TEST_BASE_IMAGE,
    });
    expect(result.status).toBe("completed");
    expect(await repo.git("show", `${result.branch}:notes.txt`)).toBe("one\ntwo\n");
    const left = await docker.listContainers({ all: true, filters: { label: [`${MANAGED_LABEL}=true`, `running-agent.task-id=${result.taskId}`] } });
    expect(left).toEqual([]);
  });
});
