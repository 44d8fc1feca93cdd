import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { promisify } from "node:util";
import { createLocalGitHost, prepareRepository, runAgentTask, type AgentTaskEvent } from "@running-agent/core";
import { createTestRepository, startScriptedModelServer, workingDirectoryOf } from "@running-agent/core/testing";
import { describe, expect, it } from "vitest";
import { createDockerPreparedStateCache, PREPARED_CACHE_LABEL } from "./docker-prepared-state-cache.js";
import { docker, expectNoContainers, scopedProvider } from "./test-engine.js";

const run = promisify(execFile);
const API_KEY = "prepare-docker-key-0123456789";
const SETUP = "mkdir -p .deps && echo installed >> .deps/runs && echo setup ran";

describe("prepareRepository on Docker", () => {
  it("commits the image ahead of any task; the task starts from it without setup; refresh commits a new image of the same key; nothing is left running", async () => {
    await using repo = await createTestRepository({ "app.js": "original\n", ".gitignore": ".deps/\n" });
    const cache = createDockerPreparedStateCache({ name: `test-${randomUUID().slice(0, 8)}` });
    const { provider, run: runLabel } = scopedProvider({ network: "host", preparedStates: cache });
    const gitHost = createLocalGitHost();
    const images = async () => (await docker.listImages({ filters: { label: [`${PREPARED_CACHE_LABEL}=${cache.name}`] } })).map((image) => image.Id);
    let sandboxId = "";
    let runs = "";
    await using model = await startScriptedModelServer({
      apiKey: API_KEY,
      script: [
        async (request) => {
          runs = (await run("docker", ["exec", sandboxId, "cat", "/workspace/.deps/runs"])).stdout;
          return { toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/app.js`, content: "edited\n" } }] };
        },
        { text: "Edited app.js." },
      ],
    });
    try {
      const prepared = await prepareRepository({ repo: repo.path, gitHost, sandbox: provider, setupCommands: [SETUP] });
      expect(prepared.reused).toBe(false);
      expect(await cache.keys()).toEqual([prepared.key]);
      const [image] = await images();
      expect(await prepareRepository({ repo: repo.path, gitHost, sandbox: provider, setupCommands: [SETUP] })).toMatchObject({ key: prepared.key, reused: true });
      await expectNoContainers(runLabel);

      const events: AgentTaskEvent[] = [];
      const result = await runAgentTask({
        repo: repo.path,
        task: "Edit app.js",
        model: { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: API_KEY },
        sandbox: provider,
        gitHost,
        setupCommands: [SETUP],
        onEvent: (event) => {
          events.push(event);
          if (event.type === "sandbox") sandboxId = event.sandboxId;
        },
      });
      expect(result.status).toBe("completed");
      expect([events.some((event) => event.type === "command.output"), runs]).toEqual([false, "installed\n"]);

      // refresh: the setup runs again in a fresh container and its image replaces the old one of the key.
      expect(await prepareRepository({ repo: repo.path, gitHost, sandbox: provider, setupCommands: [SETUP], refresh: true })).toMatchObject({ key: prepared.key, reused: false });
      const after = await images();
      expect(after).toHaveLength(1);
      expect(after[0]).not.toBe(image);
      await expectNoContainers(runLabel);
      await cache.close();
    } finally {
      await cache.invalidate().catch(() => undefined);
    }
  });
});
