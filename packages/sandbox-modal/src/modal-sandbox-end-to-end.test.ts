import { createLocalGitHost, runAgentTask, type AgentTaskEvent } from "@running-agent/core";
import { createTestRepository, startScriptedModelServer, type RecordedModelRequest } from "@running-agent/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createModalSandbox } from "./index.js";
import { startModalServer, type ModalServer } from "./testing/index.js";

const ORIGINAL = "export function add(a: number, b: number): number {\n  return a + b;\n}\n";
const EDITED = `${ORIGINAL}\nexport function multiply(a: number, b: number): number {\n  return a * b;\n}\n`;
const API_KEY = "scripted-model-key-for-modal-e2e";

function workingDirectory(request: RecordedModelRequest): string {
  const match = /Working directory: ([^\s"\\]+)/.exec(JSON.stringify(request.body?.messages ?? []));
  return match?.[1] ?? ".";
}

let server: ModalServer;

beforeAll(async () => {
  server = await startModalServer();
});

afterAll(async () => {
  await server?.close();
});

describe("runAgentTask with the Modal sandbox, end to end against the local Modal-protocol server", () => {
  it("runs real OpenCode in a Modal sandbox, pushes the scripted change, and leaves no live sandbox", async () => {
    await using repo = await createTestRepository({ "src/math.ts": ORIGINAL });
    await using model = await startScriptedModelServer({
      script: [
        (request) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectory(request)}/src/math.ts`, content: EDITED } }] }),
        { text: "Added multiply." },
      ],
    });
    const gitHost = createLocalGitHost();
    const events: AgentTaskEvent[] = [];
    const result = await runAgentTask({
      repo: repo.path,
      task: "Add a multiply function to src/math.ts",
      model: { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: API_KEY },
      sandbox: createModalSandbox({ serverUrl: server.url, tokenId: server.tokenId, tokenSecret: server.tokenSecret, app: "end-to-end" }),
      gitHost,
      onEvent: (event) => events.push(event),
    });

    expect(result.status).toBe("completed");
    expect(await repo.git("show", `${result.branch}:src/math.ts`)).toBe(EDITED);
    expect((await repo.git("diff", "--name-status", `main...${result.branch}`)).trim()).toBe("M\tsrc/math.ts");
    const [changeRequest] = await gitHost.listChangeRequests(repo.path);
    expect(changeRequest).toMatchObject({ head: result.branch, base: "main" });

    // The run went through Modal: one sandbox, created through the SDK, tagged as ours, now gone.
    const sandboxEvent = events.find((event) => event.type === "sandbox");
    expect(sandboxEvent).toMatchObject({ provider: "modal", isolated: true });
    const [record, ...others] = server.sandboxes();
    expect(others).toEqual([]);
    expect(record!.sandboxId).toBe(sandboxEvent!.type === "sandbox" ? sandboxEvent!.sandboxId : "");
    expect(record!.tags).toMatchObject({ "running-agent.managed": "true", "running-agent.task": result.taskId });
    expect(record!.result).not.toBeNull();
    expect(server.liveSandboxes()).toEqual([]);
    // The model key went in as a Modal secret, never into the sandbox definition.
    expect(record!.secretNames.length).toBeGreaterThan(0);
    expect(JSON.stringify(record!.definition)).not.toContain(API_KEY);
    expect(model.requests.some((request) => request.headers.authorization === `Bearer ${API_KEY}`)).toBe(true);
    expect(server.calls).toContain("ModalClient/SandboxTerminateV2");
  });
});
