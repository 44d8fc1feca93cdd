import { readFileSync } from "node:fs";
import { createLocalGitHost, ErrorCode, RunningAgentError, runAgentTask, startAgentTask, type AgentTaskEvent } from "@running-agent/core";
import { createTestRepository, startScriptedModelServer, workingDirectoryOf } from "@running-agent/core/testing";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createModalSandbox } from "./index.js";
import { runOnModal } from "./readme-example.js";
import { startModalServer, type ModalServer } from "./testing/index.js";

const ORIGINAL = "export function add(a: number, b: number): number {\n  return a + b;\n}\n";
const EDITED = `${ORIGINAL}\nexport function multiply(a: number, b: number): number {\n  return a * b;\n}\n`;
const API_KEY = "scripted-model-key-for-modal-e2e";

let server: ModalServer;

beforeAll(async () => {
  server = await startModalServer();
});

afterAll(async () => {
  vi.unstubAllEnvs();
  await server?.close();
});

describe("runAgentTask with the Modal sandbox, end to end against the local Modal-protocol server", () => {
  it("the README shows the example this test runs, verbatim", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    const example = readFileSync(new URL("./readme-example.ts", import.meta.url), "utf8");
    expect(readme).toContain(example.trim());
  });

  it("runs real OpenCode in a Modal sandbox, pushes the scripted change, and leaves no live sandbox", async () => {
    await using repo = await createTestRepository({ "src/math.ts": ORIGINAL });
    await using model = await startScriptedModelServer({
      script: [
        (request) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/src/math.ts`, content: EDITED } }] }),
        { text: "Added multiply." },
      ],
    });
    // The README's example, unchanged, with the SDK pointed at the local server the way a user would
    // point it at Modal: through the environment.
    vi.stubEnv("MODAL_SERVER_URL", server.url);
    vi.stubEnv("MODAL_TOKEN_ID", server.tokenId);
    vi.stubEnv("MODAL_TOKEN_SECRET", server.tokenSecret);
    const events: AgentTaskEvent[] = [];
    const { result, changeRequests } = await runOnModal(
      repo.path,
      "Add a multiply function to src/math.ts",
      { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: API_KEY },
      (event) => events.push(event),
    );

    expect(result.status).toBe("completed");
    expect(await repo.git("show", `${result.branch}:src/math.ts`)).toBe(EDITED);
    expect((await repo.git("diff", "--name-status", `main...${result.branch}`)).trim()).toBe("M\tsrc/math.ts");
    expect(changeRequests).toEqual([expect.objectContaining({ head: result.branch, base: "main" })]);

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
    // OpenCode listened on every address, as Modal's tunnels need, and was reached through the tunnel.
    const opencodeServe = record!.commands.find((command) => command.includes("serve"));
    expect(opencodeServe).toEqual(expect.arrayContaining(["/usr/local/bin/opencode", "serve", "--hostname", "0.0.0.0"]));
  });

  describe("the sandbox is terminated whatever ends the run", () => {
    const sandboxFor = () => createModalSandbox({ serverUrl: server.url, tokenId: server.tokenId, tokenSecret: server.tokenSecret, app: "end-to-end-endings" });

    it("on failure: the model refuses the request", async () => {
      await using repo = await createTestRepository({ "a.txt": "a\n" });
      await using model = await startScriptedModelServer({ script: [{ status: 400 }], afterScript: { status: 400 } });
      const error = await runAgentTask({
        repo: repo.path,
        task: "Change a.txt",
        model: { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: API_KEY },
        sandbox: sandboxFor(),
        gitHost: createLocalGitHost(),
      }).then(
        (result) => result,
        (caught: unknown) => caught,
      );
      expect(RunningAgentError.isInstance(error), `expected a typed failure, got ${JSON.stringify(error)}`).toBe(true);
      expect((error as RunningAgentError).code).toBe(ErrorCode.MODEL_ERROR);
      expect(server.liveSandboxes()).toEqual([]);
    });

    it("on timeout: the agent outlives its time", async () => {
      await using repo = await createTestRepository({ "a.txt": "a\n" });
      await using model = await startScriptedModelServer({ script: [{ hang: true }] });
      const error = await runAgentTask({
        repo: repo.path,
        task: "Wait forever",
        model: { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: API_KEY },
        sandbox: sandboxFor(),
        gitHost: createLocalGitHost(),
        agentTimeoutMs: 3000,
      }).catch((caught: unknown) => caught);
      expect(RunningAgentError.isInstance(error)).toBe(true);
      expect([ErrorCode.AGENT_TIMEOUT, ErrorCode.TIMEOUT]).toContain((error as RunningAgentError).code);
      expect(server.liveSandboxes()).toEqual([]);
    });

    it("on abort: the task is cancelled mid-agent", async () => {
      await using repo = await createTestRepository({ "a.txt": "a\n" });
      await using model = await startScriptedModelServer({ script: [{ hang: true }] });
      const handle = startAgentTask({
        repo: repo.path,
        task: "Wait forever",
        model: { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: API_KEY },
        sandbox: sandboxFor(),
        gitHost: createLocalGitHost(),
      });
      for await (const event of handle) {
        if (event.type === "phase" && event.phase === "agent" && event.status === "started") break;
      }
      while (model.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(server.liveSandboxes().length).toBe(1);
      await handle.cancel("test");
      const error = await handle.result.catch((caught: unknown) => caught);
      expect(error).toMatchObject({ code: ErrorCode.ABORTED, phase: "agent" });
      expect(server.liveSandboxes()).toEqual([]);
    });
  });
});
