import { readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { describe, expect, it } from "vitest";
import { agentError, ErrorCode, createLocalGitHost, createLocalSandbox, RunningAgentError, runAgentTask, type AgentTaskEvent, type SandboxProvider } from "../index.js";
import { createTestRepository, usePrivateTmpdir } from "../testing/index.js";
import { ourTempFolders } from "../testing/leak-checks.js";

// The host clone runs while the sandbox is made; the clone phase waits for it.
describe("the host clone beside the sandbox's creation", () => {
  usePrivateTmpdir("running-agent-host-clone-tmp-");

  it("a sandbox that fails while the clone runs fails the sandbox phase, and neither the clone nor its folder outlives the task", async () => {
    await using repo = await createTestRepository({ "README.md": "# clone\n" });
    const cloneFolders = () => readdirSync(tmpdir()).filter((name) => name.startsWith("running-agent-clone-"));
    const inner = createLocalSandbox();
    let sawClone = false;
    const failing: SandboxProvider = Object.create(inner);
    // A provider whose create is not quick (the local one's is too quick to hide a clone behind).
    Object.defineProperty(failing, "providerId", { value: "slow-to-create" });
    Object.defineProperty(failing, "quickCreate", { value: false });
    failing.create = async () => {
      // Waits for the event it asserts on (the clone's folder), bounded so that a serial clone fails the test instead of hanging it.
      for (let attempt = 0; attempt < 600 && cloneFolders().length === 0; attempt++) await new Promise((resolve) => setTimeout(resolve, 50));
      sawClone = cloneFolders().length > 0;
      throw agentError(ErrorCode.SANDBOX_CREATE_FAILED, "This sandbox never opens.");
    };
    const events: AgentTaskEvent[] = [];
    const error = await runAgentTask({
      repo: repo.path,
      task: "Look at the README",
      model: { provider: "openai-compatible", model: "scripted", baseURL: "http://127.0.0.1:9/v1", apiKey: "k" },
      sandbox: failing,
      gitHost: createLocalGitHost(),
      onEvent: (event) => events.push(event),
    }).catch((caught: unknown) => caught);
    expect(RunningAgentError.isInstance(error) && [error.code, error.phase]).toEqual([ErrorCode.SANDBOX_CREATE_FAILED, "sandbox"]);
    expect(sawClone).toBe(true);
    expect(events.some((event) => event.type === "phase" && event.phase === "clone")).toBe(false);
    expect(ourTempFolders()).toEqual([]);
  });
});
