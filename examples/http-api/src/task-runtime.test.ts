import { isSandboxPool, runAgentTask, type AgentTaskEvent } from "@running-agent/core";
import { createTestRepository } from "@running-agent/core/offline";
import { describe, expect, it } from "vitest";
import { loadServerConfig } from "./server-config.js";
import { createTaskRuntime } from "./task-runtime.js";

describe("createTaskRuntime with RUNNING_AGENT_POOL_SIZE", () => {
  it("gives tasks a pool on the configured model: a job runs on a pooled sandbox, and close() empties the pool", async () => {
    const runtime = await createTaskRuntime(loadServerConfig({ RUNNING_AGENT_POOL_SIZE: "1" }));
    const pool = runtime.taskDefaults.sandbox;
    try {
      expect(isSandboxPool(pool)).toBe(true);
      if (!isSandboxPool(pool)) return;
      expect(runtime.description).toContain("sandbox pool: 1 ready for the configured model");
      await pool.whenReady();
      await using repo = await createTestRepository({ "README.md": "# pooled\n" });
      const events: AgentTaskEvent[] = [];
      const result = await runAgentTask({ ...runtime.taskDefaults, repo: repo.path, task: "Record this task", onEvent: (event) => events.push(event) });
      expect(result.status).toBe("completed");
      expect(events.find((event) => event.type === "sandbox")).toMatchObject({ pooled: true });
    } finally {
      await runtime.close();
    }
    if (isSandboxPool(pool)) expect(pool.stats()).toMatchObject({ idle: 0, starting: 0 });
  });

  it("without it, tasks get the plain provider", async () => {
    const runtime = await createTaskRuntime(loadServerConfig({}));
    try {
      expect(isSandboxPool(runtime.taskDefaults.sandbox)).toBe(false);
    } finally {
      await runtime.close();
    }
  });
});
