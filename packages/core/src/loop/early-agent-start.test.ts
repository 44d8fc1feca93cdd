import { describe, expect, it } from "vitest";
import { runAgentTask, type AgentTaskEvent } from "../index.js";
import { createTestRepository, startScriptedModelServer } from "../testing/index.js";

// Without a pool, OpenCode starts while the repository is cloned, on a workspace that is still empty.
// Its config is read per directory at the first request, after the files are placed: a repo's own
// config applies when allowed, and stays out otherwise.
const MARKER = "early-start-agents-md-marker-51c2";
const API_KEY = "early-start-key-0123456789";

async function runOn(allowRepoAgentConfig: boolean): Promise<{ body: string; events: AgentTaskEvent[] }> {
  await using repo = await createTestRepository({ "AGENTS.md": `Always mention ${MARKER}.\n`, "README.md": "# early\n" });
  await using model = await startScriptedModelServer({ apiKey: API_KEY, afterScript: { text: "Nothing to change." } });
  const events: AgentTaskEvent[] = [];
  const result = await runAgentTask({
    repo: repo.path,
    task: "Look at the README",
    model: { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: API_KEY },
    allowRepoAgentConfig,
    onEvent: (event) => events.push(event),
  });
  expect(result.status).toBe("no_changes");
  return { body: model.chatRequests[0]!.rawBody, events };
}

describe("the OpenCode server started during the clone", () => {
  it("serves the task (the agent phase uses it) and applies the repo's AGENTS.md only when allowRepoAgentConfig is on", async () => {
    const allowed = await runOn(true);
    expect(allowed.body).toContain(MARKER);
    expect(allowed.events.some((event) => event.type === "log" && event.message.startsWith("Using the OpenCode server started ahead of the agent phase"))).toBe(true);
    const denied = await runOn(false);
    expect(denied.body).not.toContain(MARKER);
  });
});
