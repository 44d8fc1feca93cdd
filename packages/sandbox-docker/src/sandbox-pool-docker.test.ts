import { createSandboxPool, runAgentTask, type AgentTaskEvent, type SandboxPoolEvent } from "@running-agent/core";
import { createTestRepository, startScriptedModelServer, workingDirectoryOf, type ScriptedModelServer } from "@running-agent/core/testing";
import { describe, expect, it } from "vitest";
import { containersOf, docker, expectNoContainers, hostProcessesOf, scopedProvider } from "./test-engine.js";

// The core's sandbox pool over the Docker sandbox: containers opened ahead of time with OpenCode
// started and warmed; host networking so that the servers reach the scripted model on loopback.
const ORIGINAL = "def greet(name):\n    return 'Hello ' + name\n";
const EDITED = `${ORIGINAL}\n\ndef farewell(name):\n    return 'Goodbye ' + name\n`;
const API_KEY = "scripted-docker-pool-key-0123456789";

function modelFor(server: ScriptedModelServer) {
  return { provider: "openai-compatible" as const, model: "scripted", baseURL: server.url, apiKey: API_KEY };
}

function readyIds(events: SandboxPoolEvent[]): string[] {
  return events.flatMap((event) => (event.type === "ready" ? [event.sandboxId] : []));
}

/** The container's OpenCode server processes, seen from this machine. */
async function serversIn(containerId: string): Promise<number[]> {
  return (await hostProcessesOf(containerId)).filter((process) => /^(\S*\/)?opencode serve /.test(process.commandLine)).map((process) => process.pid);
}

describe("createSandboxPool with the Docker sandbox", () => {
  it("a pooled task runs on the container's warm server (no new server starts), and close() leaves no container", async () => {
    await using repo = await createTestRepository({ "greet.py": ORIGINAL });
    let pooledId = "";
    const serversAtRequest: number[][] = [];
    await using model = await startScriptedModelServer({
      apiKey: API_KEY,
      script: [
        async (request) => {
          serversAtRequest.push(await serversIn(pooledId));
          return { toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/greet.py`, content: EDITED } }] };
        },
        { text: "Added farewell." },
      ],
    });
    const { provider, run } = scopedProvider({ network: "host" });
    const events: SandboxPoolEvent[] = [];
    const pool = createSandboxPool(provider, { model: modelFor(model), onEvent: (event) => events.push(event) });
    try {
      await pool.whenReady();
      pooledId = readyIds(events)[0]!;
      const warmServers = await serversIn(pooledId);
      expect(warmServers).toHaveLength(1);
      expect(model.requests).toHaveLength(0);

      const taskEvents: AgentTaskEvent[] = [];
      const result = await runAgentTask({ repo: repo.path, task: "Add a farewell function to greet.py", model: modelFor(model), sandbox: pool, onEvent: (event) => taskEvents.push(event) });
      expect(result.status).toBe("completed");
      expect(await repo.git("show", `${result.branch}:greet.py`)).toBe(EDITED);
      expect(taskEvents.find((event) => event.type === "sandbox")).toMatchObject({ provider: "docker", sandboxId: pooledId, pooled: true });
      expect(serversAtRequest).toEqual([warmServers]);
      // The task's container is gone with the task; the pool has started its replacement.
      await pool.whenReady();
      expect((await containersOf(run)).map((info) => info.Id)).toEqual([readyIds(events)[1]]);
    } finally {
      await pool.close();
    }
    await expectNoContainers(run);
  });

  it("a pooled container killed from outside is replaced, never handed out", async () => {
    await using model = await startScriptedModelServer({});
    const { provider, run } = scopedProvider({ network: "host" });
    const events: SandboxPoolEvent[] = [];
    const pool = createSandboxPool(provider, { model: modelFor(model), onEvent: (event) => events.push(event) });
    try {
      await pool.whenReady();
      const first = readyIds(events)[0]!;
      await docker.getContainer(first).kill();
      await expect.poll(() => pool.stats().replaced, { timeout: 60_000 }).toBe(1);
      await pool.whenReady();
      expect(readyIds(events)[1]).not.toBe(first);
      expect((await containersOf(run)).map((info) => info.Id)).toEqual([readyIds(events)[1]]);
    } finally {
      await pool.close();
    }
    await expectNoContainers(run);
  });
});
