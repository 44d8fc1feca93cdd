import { isSandboxPool, runAgentTask, type AgentTaskEvent } from "@running-agent/core";
import { createTestRepository } from "@running-agent/core/offline";
import { startModalServer } from "@running-agent/sandbox-modal/testing";
import { describe, expect, it, vi } from "vitest";
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

describe("createTaskRuntime with RUNNING_AGENT_GIT_HOST=gitlab", () => {
  it("gives tasks the GitLab host for the configured instance, holding the token for redaction", async () => {
    const runtime = await createTaskRuntime(loadServerConfig({ RUNNING_AGENT_GIT_HOST: "gitlab", GITLAB_TOKEN: "glpat-runtime", GITLAB_URL: "https://git.example.com/gitlab" }));
    try {
      expect(runtime.gitHost.hostId).toBe("gitlab");
      expect(runtime.gitHost.supports("https://git.example.com/gitlab/group/sub/project.git")).toBe(true);
      expect(runtime.gitHost.supports("https://github.com/octo/app")).toBe(false);
      expect(runtime.gitHost.secrets?.()).toEqual(["glpat-runtime"]);
      expect(runtime.description).toContain("git host: gitlab (https://git.example.com/gitlab)");
    } finally {
      await runtime.close();
    }
  });
});

describe("createTaskRuntime with RUNNING_AGENT_SANDBOX=modal (the seed's sandbox), against the local Modal-protocol server", () => {
  it("runs a job's task in a Modal sandbox made through the SDK, and refuses to start with credentials Modal rejects", async () => {
    await using modal = await startModalServer();
    vi.stubEnv("MODAL_SERVER_URL", modal.url);
    vi.stubEnv("MODAL_TOKEN_ID", modal.tokenId);
    vi.stubEnv("MODAL_TOKEN_SECRET", modal.tokenSecret);
    try {
      const runtime = await createTaskRuntime(loadServerConfig({ RUNNING_AGENT_SANDBOX: "modal", RUNNING_AGENT_MODAL_APP: "http-api-test" }));
      try {
        expect(runtime.description).toContain("sandbox: modal (app http-api-test)");
        await using repo = await createTestRepository({ "README.md": "# on modal\n" });
        const events: AgentTaskEvent[] = [];
        const result = await runAgentTask({ ...runtime.taskDefaults, repo: repo.path, task: "Record this task", onEvent: (event) => events.push(event) });
        expect(result.status).toBe("completed");
        expect(events.find((event) => event.type === "sandbox")).toMatchObject({ provider: "modal" });
        expect(modal.sandboxes()).toHaveLength(1);
      } finally {
        await runtime.close();
      }
      vi.stubEnv("MODAL_TOKEN_SECRET", "not-the-secret");
      await expect(createTaskRuntime(loadServerConfig({ RUNNING_AGENT_SANDBOX: "modal" }))).rejects.toMatchObject({ code: "AUTH_FAILED" });
    } finally {
      vi.unstubAllEnvs();
    }
  });
});
