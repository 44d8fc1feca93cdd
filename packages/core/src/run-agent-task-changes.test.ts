import { describe, expect, it } from "vitest";
import { ErrorCode, RunningAgentError, createLocalGitHost, createLocalSandbox, runAgentTask } from "./index.js";
import type { AgentTaskEvent, AgentTaskOptions, SandboxProvider } from "./index.js";
import { createTestRepository, startScriptedModelServer, workingDirectoryOf, type ScriptedModelServer } from "./testing/index.js";

const API_KEY = "scripted-model-key-for-the-secret-scan-0123456789";
const GIT_TOKEN = "git-token-for-the-secret-scan-abcdef";
const EXTRA_SECRET = "caller-secret-for-the-secret-scan-xyz";

function modelFor(server: ScriptedModelServer) {
  return { provider: "openai-compatible" as const, model: "scripted", baseURL: server.url, apiKey: API_KEY };
}

/** A scripted agent that runs one shell command in the repository, then says it is done. */
function runsCommand(command: string) {
  return [
    (request: Parameters<typeof workingDirectoryOf>[0]) => ({ toolCalls: [{ name: "bash", arguments: { command, description: "Run a command", workdir: workingDirectoryOf(request) } }] }),
    { text: "Done." },
  ];
}

async function failedRun(command: string, extra: Partial<AgentTaskOptions> = {}) {
  const repo = await createTestRepository({ "README.md": "# readme\n" });
  const model = await startScriptedModelServer({ script: runsCommand(command) });
  const events: AgentTaskEvent[] = [];
  try {
    const error = await runAgentTask({
      repo: repo.path,
      task: "Change the repository",
      model: modelFor(model),
      sandbox: createLocalSandbox(),
      gitHost: createLocalGitHost(),
      onEvent: (event) => events.push(event),
      ...extra,
    }).catch((caught: unknown) => caught);
    // The remote holds the base branch only: nothing was pushed.
    const branches = (await repo.git("for-each-ref", "--format=%(refname)", "refs/heads")).trim();
    return { error: error as RunningAgentError, events, branches };
  } finally {
    await model.close();
    await repo[Symbol.asyncDispose]();
  }
}

describe("runAgentTask refuses to push the run's secrets", () => {
  it("an agent that runs `env > out.txt` fails with SECRET_IN_CHANGES in collect, pushes nothing, and no text holds the key", async () => {
    const { error, events, branches } = await failedRun("env > out.txt && echo fine > other.txt");
    expect(RunningAgentError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code: ErrorCode.SECRET_IN_CHANGES, phase: "collect" });
    expect(error.message).toContain("out.txt");
    expect(branches).toBe("refs/heads/main");
    const phases = events.filter((event) => event.type === "phase").map((event) => `${event.phase}:${event.status}`);
    expect(phases).toContain("collect:failed");
    expect(phases.some((phase) => phase.startsWith("commit:") || phase.startsWith("push:"))).toBe(false);
    expect(JSON.stringify({ message: error.message, details: error.details, events })).not.toContain(API_KEY);
  });

  it("finds the Git token, a caller's `secrets` and the OpenCode server password written into files", async () => {
    // The server password lives only in the sandbox's environment; the loop learns it when it makes it.
    for (const [command, extra] of [
      [`printf '%s' "$OPENCODE_SERVER_PASSWORD" > password.txt`, {}],
      [`printf 'token=${GIT_TOKEN}' > token.txt`, { gitToken: GIT_TOKEN }],
      [`printf '\\000\\001${EXTRA_SECRET}\\002' > blob.bin`, { secrets: [EXTRA_SECRET] }],
    ] as Array<[string, Partial<AgentTaskOptions>]>) {
      const { error, branches } = await failedRun(command, extra);
      expect(error).toMatchObject({ code: ErrorCode.SECRET_IN_CHANGES, phase: "collect" });
      expect(error.message).toMatch(/password\.txt|token\.txt|blob\.bin/);
      expect(error.message).not.toContain(GIT_TOKEN);
      expect(error.message).not.toContain(EXTRA_SECRET);
      expect(branches).toBe("refs/heads/main");
    }
  });
});

describe("runAgentTask changeLimits", () => {
  it("a file over maxFileBytes fails with CHANGES_TOO_LARGE and nothing is pushed", async () => {
    const { error, branches } = await failedRun("head -c 3145728 /dev/urandom > big.bin", { changeLimits: { maxFileBytes: 1024 * 1024 } });
    expect(error).toMatchObject({ code: ErrorCode.CHANGES_TOO_LARGE, phase: "collect", details: { limit: "maxFileBytes", path: "big.bin" } });
    expect(branches).toBe("refs/heads/main");
  });

  it("rejects bad limits in validate, before any sandbox is created", async () => {
    const inner = createLocalSandbox();
    let created = 0;
    const sandbox: SandboxProvider = { ...inner, specificationVersion: inner.specificationVersion, providerId: "counting", create: (options) => (created++, inner.create(options)) };
    await using repo = await createTestRepository({ "README.md": "# readme\n" });
    for (const changeLimits of [{ maxFileBytes: 0 }, { maxFiles: 1.5 }, { maxTotalBytes: "1GB" }, { maxFiels: 3 }, "big", null] as unknown[]) {
      const error = await runAgentTask({ repo: repo.path, task: "x", model: { provider: "openai-compatible", model: "scripted", baseURL: "http://127.0.0.1:9", apiKey: API_KEY }, sandbox, changeLimits: changeLimits as AgentTaskOptions["changeLimits"] }).catch((caught: unknown) => caught);
      expect(error, JSON.stringify(changeLimits)).toMatchObject({ code: ErrorCode.INVALID_OPTIONS, phase: "validate" });
      expect((error as Error).message).toContain("changeLimits");
    }
    expect(created).toBe(0);
  });
});
