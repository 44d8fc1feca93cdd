import { createSandboxPool, runAgentTask, type AgentTaskEvent, type SandboxPoolEvent } from "@running-agent/core";
import { createTestRepository, startScriptedModelServer, workingDirectoryOf } from "@running-agent/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createModalSandbox } from "./index.js";
import { startModalServer, type ModalServer } from "./testing/index.js";

// The core's sandbox pool over the Modal sandbox, against the local Modal-protocol server.
const ORIGINAL = "export const answer = 41;\n";
const EDITED = "export const answer = 42;\n";
const API_KEY = "scripted-model-key-for-modal-pool";

let server: ModalServer;
beforeAll(async () => {
  server = await startModalServer();
});
afterAll(async () => {
  await server?.close();
});

describe("createSandboxPool with the Modal sandbox (local Modal-protocol server)", () => {
  it("a pooled task runs on the sandbox's warm server: one `opencode serve` in that sandbox, started before the task; close() leaves no live sandbox", async () => {
    await using repo = await createTestRepository({ "src/answer.ts": ORIGINAL });
    await using model = await startScriptedModelServer({
      apiKey: API_KEY,
      script: [
        (request) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/src/answer.ts`, content: EDITED } }] }),
        { text: "Fixed the answer." },
      ],
    });
    const modelConfig = { provider: "openai-compatible" as const, model: "scripted", baseURL: model.url, apiKey: API_KEY };
    const provider = createModalSandbox({ serverUrl: server.url, tokenId: server.tokenId, tokenSecret: server.tokenSecret, app: "pool" });
    const poolEvents: SandboxPoolEvent[] = [];
    const pool = createSandboxPool(provider, { model: modelConfig, onEvent: (event) => poolEvents.push(event) });
    try {
      await pool.whenReady();
      const pooledId = poolEvents.flatMap((event) => (event.type === "ready" ? [event.sandboxId] : []))[0]!;
      const serveCommands = (id: string) => server.sandboxes().find((record) => record.sandboxId === id)!.commands.filter((command) => command.includes("serve"));
      expect(serveCommands(pooledId)).toHaveLength(1);
      expect(model.requests).toHaveLength(0);

      const events: AgentTaskEvent[] = [];
      const result = await runAgentTask({ repo: repo.path, task: "Make the answer 42", model: modelConfig, sandbox: pool, onEvent: (event) => events.push(event) });
      expect(result.status).toBe("completed");
      expect(await repo.git("show", `${result.branch}:src/answer.ts`)).toBe(EDITED);
      expect(events.find((event) => event.type === "sandbox")).toMatchObject({ provider: "modal", sandboxId: pooledId, pooled: true });
      // No second server was started in the task's sandbox.
      expect(serveCommands(pooledId)).toHaveLength(1);
      await pool.whenReady();
    } finally {
      await pool.close();
    }
    expect(server.liveSandboxes()).toEqual([]);
  });
});
