import { describe, expect, it } from "vitest";
import { createLocalGitHost, createLocalSandbox, runAgentTask, type AgentTaskEvent, type GitHost, type SandboxProvider, type SandboxSession } from "../index.js";
import { createTestRepository, startScriptedModelServer, workingDirectoryOf } from "../testing/index.js";

const API_KEY = "sandbox-release-key-0123456789";

// Once the changes are collected nothing runs in the sandbox: it is destroyed while the host commits,
// pushes and opens the change request, and teardown waits for that same release.
describe("the sandbox's release after the last collect", () => {
  it("destroys the sandbox once, before the change request is opened, and reports its lifetime at teardown", async () => {
    await using repo = await createTestRepository({ "README.md": "# release\n" });
    await using model = await startScriptedModelServer({
      apiKey: API_KEY,
      script: [(request) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/NOTES.md`, content: "notes\n" } }] }), { text: "Wrote the notes." }],
    });
    const events: AgentTaskEvent[] = [];
    let destroys = 0;
    let destroyed!: () => void;
    const destroyCalled = new Promise<void>((resolve) => (destroyed = resolve));
    const inner = createLocalSandbox();
    const sandbox: SandboxProvider = Object.create(inner);
    sandbox.create = async (options) => {
      const session = await inner.create(options);
      const destroy = session.destroy.bind(session);
      return Object.assign(Object.create(session) as SandboxSession, {
        destroy: async () => {
          destroys += 1;
          // What the task had done when the sandbox went.
          phasesAtDestroy ??= events.filter((event) => event.type === "phase").map((event) => `${event.phase} ${event.status}`);
          destroyed();
          return destroy();
        },
      });
    };
    let phasesAtDestroy: string[] | undefined;
    const localHost = createLocalGitHost();
    let destroyedBeforePullRequest = false;
    const gitHost: GitHost = Object.create(localHost);
    gitHost.openChangeRequest = async (repository, input, options) => {
      // Waits for the event it asserts on, bounded, so that a release left to teardown fails the test instead of hanging it.
      destroyedBeforePullRequest = await Promise.race([destroyCalled.then(() => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), 30_000))]);
      return localHost.openChangeRequest(repository, input, options);
    };
    const result = await runAgentTask({
      repo: repo.path,
      task: "Write the notes",
      model: { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: API_KEY },
      sandbox,
      gitHost,
      onEvent: (event) => events.push(event),
    });
    expect(result.status).toBe("completed");
    expect(result.changes.map((change) => change.path)).toEqual(["NOTES.md"]);
    expect(result.pullRequest).toBeDefined();
    expect(destroyedBeforePullRequest).toBe(true);
    expect(destroys).toBe(1);
    // Not before the changes were collected.
    expect(phasesAtDestroy).toContain("collect completed");
    expect(phasesAtDestroy).not.toContain("teardown started");
    // The event still comes at teardown, with the lifetime the result reports.
    const destroyedEvent = events.findIndex((event) => event.type === "sandbox.destroyed");
    expect(destroyedEvent).toBeGreaterThan(events.findIndex((event) => event.type === "phase" && event.phase === "teardown" && event.status === "started"));
    expect(events[destroyedEvent]).toMatchObject({ lifetimeMs: result.sandboxMs });
  });
});
