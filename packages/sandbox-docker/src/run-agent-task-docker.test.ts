import { readFile, stat } from "node:fs/promises";
import { createLocalGitHost, ErrorCode, RunningAgentError, runAgentTask, type AgentTaskEvent } from "@running-agent/core";
import { createTestRepository, startScriptedModelServer, type ScriptedModelServer, type ScriptedTurn, workingDirectoryOf } from "@running-agent/core/testing";
import { describe, expect, it } from "vitest";
import { docker, expectNoContainers, hostProcessesOf, scopedProvider } from "./test-engine.js";

// End to end: runAgentTask with the real OpenCode server inside a real container, and the local
// Git host. By default the container has no network but the host's egress proxy, which serves the
// scripted model (with the key added on the host); with network "open" it has host networking.
const ORIGINAL = "def greet(name):\n    return 'Hello ' + name\n";
const EDITED = `${ORIGINAL}\n\ndef farewell(name):\n    return 'Goodbye ' + name\n`;
const API_KEY = "scripted-docker-key-0123456789";

/** The agent's turns for the plain cases: write EDITED over greet.py, then say so. */
const EDIT_GREET: ScriptedTurn[] = [
  (request) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/greet.py`, content: EDITED } }] }),
  { text: "Added farewell." },
];

function modelFor(server: ScriptedModelServer) {
  return { provider: "openai-compatible" as const, model: "scripted", baseURL: server.url, apiKey: API_KEY };
}

describe("runAgentTask with the Docker sandbox", () => {
  it("runs OpenCode in a container, pushes the agent's change, and leaves no container behind", async () => {
    await using repo = await createTestRepository({ "greet.py": ORIGINAL });
    await using model = await startScriptedModelServer({ script: EDIT_GREET });
    const { provider, run } = scopedProvider({ network: "host" });
    const events: AgentTaskEvent[] = [];
    let containerSeen: { image: string; networkMode: string | undefined; apiKeyInEnv: boolean } | undefined;

    const result = await runAgentTask({
      repo: repo.path,
      task: "Add a farewell function to greet.py",
      model: modelFor(model),
      sandbox: provider,
      gitHost: createLocalGitHost(),
      resources: { memoryMiB: 2048, pids: 512 },
      onEvent: (event) => {
        events.push(event);
        if (event.type === "sandbox") {
          void docker
            .getContainer(event.sandboxId)
            .inspect()
            .then((info) => {
              containerSeen = {
                image: info.Config.Image,
                networkMode: info.HostConfig.NetworkMode,
                apiKeyInEnv: info.Config.Env.some((entry) => entry.endsWith(`=${API_KEY}`)),
              };
            });
        }
      },
    });

    expect(result.status).toBe("completed");
    expect(result.summary).toBe("Added farewell.");
    expect(result.changes).toEqual([expect.objectContaining({ path: "greet.py", status: "modified" })]);
    expect(await repo.git("show", `${result.branch}:greet.py`)).toBe(EDITED);
    expect((await repo.git("diff", "--name-status", `main...${result.branch}`)).trim()).toBe("M\tgreet.py");

    // It really ran in our container: the sandbox event names it, the model was called through it.
    const sandboxEvent = events.find((event) => event.type === "sandbox");
    expect(sandboxEvent).toMatchObject({ provider: "docker", isolated: true });
    // The default policy, enforced: no network but the relays, and the key stays on the host.
    expect(containerSeen).toEqual({ image: provider.image, networkMode: "none", apiKeyInEnv: false });
    expect(model.chatRequests.length).toBe(2);
    expect(model.chatRequests[0]?.headers.authorization).toBe(`Bearer ${API_KEY}`);
    await expectNoContainers(run);
  });

  it("with settings.user 1000:1000, OpenCode and its tools run as that user, and the agent's change is pushed", async () => {
    await using repo = await createTestRepository({ "greet.py": ORIGINAL });
    let containerId = "";
    let serverUids: number[] = [];
    let editedFile: { uid: number; content: string } | undefined;
    // Seen from this machine while the agent runs: the container's processes and the file the tool wrote.
    const script: ScriptedTurn[] = [
      async (request) => {
        serverUids = (await hostProcessesOf(containerId)).filter((process) => process.commandLine.includes("serve")).map((process) => process.uid);
        return { toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/greet.py`, content: EDITED } }] };
      },
      async (request) => {
        const [server] = await hostProcessesOf(containerId);
        const path = `/proc/${server?.pid}/root${workingDirectoryOf(request)}/greet.py`;
        editedFile = { uid: (await stat(path)).uid, content: await readFile(path, "utf8") };
        return { text: "Added farewell." };
      },
    ];
    await using model = await startScriptedModelServer({ script });
    const { provider, run } = scopedProvider({ network: "host", user: "1000:1000" });

    const result = await runAgentTask({
      repo: repo.path,
      task: "Add a farewell function to greet.py",
      model: modelFor(model),
      sandbox: provider,
      gitHost: createLocalGitHost(),
      onEvent: (event) => {
        if (event.type === "sandbox") containerId = event.sandboxId;
      },
    });

    expect(result.status).toBe("completed");
    expect(serverUids.length).toBeGreaterThan(0);
    expect(serverUids.every((uid) => uid === 1000), JSON.stringify(serverUids)).toBe(true);
    // The write tool ran as the user, in the repo the sandbox put there: the file is the user's.
    expect(editedFile).toEqual({ uid: 1000, content: EDITED });
    expect(result.changes).toEqual([expect.objectContaining({ path: "greet.py", status: "modified" })]);
    expect(await repo.git("show", `${result.branch}:greet.py`)).toBe(EDITED);
    expect((await repo.git("diff", "--name-status", `main...${result.branch}`)).trim()).toBe("M\tgreet.py");
    await expectNoContainers(run);
  });

  it('with network "open" and modelProxy, the container has host networking, its environment holds no model key, and the model still gets it through the host\'s proxy', async () => {
    await using repo = await createTestRepository({ "greet.py": ORIGINAL });
    await using model = await startScriptedModelServer({ script: EDIT_GREET });
    const { provider, run } = scopedProvider({ network: "host" });
    expect(provider.reachesHostLoopback).toBe(true);
    let containerEnvironment: string[] | undefined;
    let networkMode: string | undefined;

    const result = await runAgentTask({
      repo: repo.path,
      task: "Add a farewell function to greet.py",
      model: modelFor(model),
      sandbox: provider,
      gitHost: createLocalGitHost(),
      network: "open",
      modelProxy: true,
      onEvent: (event) => {
        if (event.type === "sandbox") {
          void docker
            .getContainer(event.sandboxId)
            .inspect()
            .then((info) => {
              containerEnvironment = info.Config.Env;
              networkMode = info.HostConfig.NetworkMode;
            });
        }
      },
    });

    expect(result.status).toBe("completed");
    expect(await repo.git("show", `${result.branch}:greet.py`)).toBe(EDITED);
    expect(containerEnvironment?.some((entry) => entry.startsWith("RUNNING_AGENT_MODEL_API_KEY=run-"))).toBe(true);
    expect(JSON.stringify(containerEnvironment)).not.toContain(API_KEY);
    expect(networkMode).toBe("host");
    expect(model.chatRequests.length).toBe(2);
    expect(model.chatRequests.every((request) => request.headers.authorization === `Bearer ${API_KEY}`)).toBe(true);
    await expectNoContainers(run);
  });

  it("a cancelled task rejects with ABORTED and its container is removed", async () => {
    await using repo = await createTestRepository({ "greet.py": ORIGINAL });
    // The model never answers: the task is cancelled while the agent waits for it.
    await using model = await startScriptedModelServer({ script: [{ hang: true }] });
    const { provider, run } = scopedProvider({ network: "host" });
    const controller = new AbortController();
    void model.waitForChatRequests(1, { timeoutMs: 120_000 }).then(() => controller.abort(), () => undefined);

    const error = await runAgentTask({
      repo: repo.path,
      task: "Add a farewell function to greet.py",
      model: modelFor(model),
      sandbox: provider,
      gitHost: createLocalGitHost(),
      signal: controller.signal,
    }).catch((caught: unknown) => caught);

    expect(RunningAgentError.isInstance(error) && error.code).toBe(ErrorCode.ABORTED);
    expect(model.chatRequests.length).toBe(1);
    await expectNoContainers(run);
    expect((await repo.git("branch", "--list")).trim()).toBe("* main");
  });

  it("a failing model and a task past its time limit end with typed errors, and their containers are removed", async () => {
    await using repo = await createTestRepository({ "greet.py": ORIGINAL });
    // 400 fails at once (OpenCode retries only 5xx).
    await using failing = await startScriptedModelServer({ script: [{ status: 400, body: { error: { message: "bad request", type: "invalid_request_error" } } }] });
    const failed = scopedProvider({ network: "host" });
    const failure = await runAgentTask({
      repo: repo.path,
      task: "Add a farewell function to greet.py",
      model: modelFor(failing),
      sandbox: failed.provider,
      gitHost: createLocalGitHost(),
    }).catch((caught: unknown) => caught);
    expect(RunningAgentError.isInstance(failure) && failure.code).toBe(ErrorCode.MODEL_ERROR);
    await expectNoContainers(failed.run);

    await using hanging = await startScriptedModelServer({ script: [{ hang: true }] });
    const slow = scopedProvider({ network: "host" });
    const timeout = await runAgentTask({
      repo: repo.path,
      task: "Add a farewell function to greet.py",
      model: modelFor(hanging),
      sandbox: slow.provider,
      gitHost: createLocalGitHost(),
      timeoutMs: 10_000,
    }).catch((caught: unknown) => caught);
    expect(RunningAgentError.isInstance(timeout) && [ErrorCode.TIMEOUT, ErrorCode.AGENT_TIMEOUT].includes(timeout.code as never), String(timeout)).toBe(true);
    await expectNoContainers(slow.run);
    expect((await repo.git("branch", "--list")).trim()).toBe("* main");
  });

  it("a container killed from outside mid-task ends the task with a typed error, and nothing of it remains", async () => {
    await using repo = await createTestRepository({ "greet.py": ORIGINAL });
    // The model never answers, so the agent is surely mid-task when the container is killed.
    await using model = await startScriptedModelServer({ script: [{ hang: true }] });
    const { provider, run } = scopedProvider({ network: "host" });
    let containerId = "";
    void model.waitForChatRequests(1, { timeoutMs: 120_000 }).then(
      () => docker.getContainer(containerId).kill(),
      () => undefined,
    );

    const error = await runAgentTask({
      repo: repo.path,
      task: "Add a farewell function to greet.py",
      model: modelFor(model),
      sandbox: provider,
      gitHost: createLocalGitHost(),
      onEvent: (event) => {
        if (event.type === "sandbox") containerId = event.sandboxId;
      },
    }).catch((caught: unknown) => caught);

    // The engine sees its server die (exit 137) and asks the session why: the container is gone.
    expect(RunningAgentError.isInstance(error), String(error)).toBe(true);
    expect(error, String(error)).toMatchObject({ code: ErrorCode.SANDBOX_TERMINATED, phase: "agent" });
    await expectNoContainers(run);
    expect((await repo.git("branch", "--list")).trim()).toBe("* main");
  });
});
