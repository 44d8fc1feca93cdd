import { describe, expect, it } from "vitest";
import type { AgentTaskEvent, AgentTaskOptions, AgentTaskResult } from "../index.js";
import { runAgentTask } from "../run-agent-task.js";
import { prepareRepository } from "../prepared/prepare-repository.js";
import { keepPrepared } from "../prepared/keep-prepared.js";
import { createSandboxPool } from "../sandbox-pool/sandbox-pool.js";
import type { SandboxProvider } from "../spec/sandbox-spec.js";
import { startGitHttpServer } from "./git-http-server.js";
import { startScriptedModelServer, workingDirectoryOf, type ScriptedTurn } from "./scripted-model-server.js";
import { createServedGitHost } from "./served-git-host.js";
import { createTestRepository } from "./test-repository.js";

/** Settings for {@link testMovedBase}. */
export interface MovedBaseConformanceOptions {
  /** Shown in the `describe` block. */
  name: string;
  /** A provider that keeps prepared states with their origin (`findPreparedState`); a new cache each call. */
  provider(): {
    /** The provider under test, with a prepared-state cache of its own. */
    provider: SandboxProvider;
    /** Removes what the cache kept (images, snapshots, folders) once the suite is done. */
    close?(): Promise<void>;
  };
  /** True when the sandbox was started from a kept state (its image or snapshot), for providers that can tell. Asked when the sandbox event arrives. */
  startedFromState?(sandboxId: string): Promise<boolean>;
}

const API_KEY = "moved-base-conformance-key-0123456789";
const GIT_TOKEN = "tok_moved_base_conformance_5ecret";
const GIT_USER = "x-access-token";
const SETUP = "mkdir -p .deps && echo installed >> .deps/runs && echo setup ran";
// Printed by a check, inside the sandbox after the agent (whose own edit is app.js): what the sandbox held.
const SHOW = { name: "show", command: "cat .deps/runs; for f in lib/util.js lib/new.js old.js; do echo \"$f: $(cat $f 2>/dev/null || echo missing)\"; done; git -c safe.directory='*' rev-parse HEAD" };
const EDIT: ScriptedTurn[] = [(request) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/app.js`, content: "edited by the agent\n" } }] }), { text: "Edited app.js." }];

const setupRan = (events: AgentTaskEvent[]) => events.some((event) => event.type === "command.output");
const logLine = (events: AgentTaskEvent[], start: string) => events.find((event): event is Extract<AgentTaskEvent, { type: "log" }> => event.type === "log" && event.message.startsWith(start))?.message;

/**
 * A task whose base moved since the provider's prepared state (git over HTTP from git's own
 * http-backend): it starts from the older state and brings in what changed (no setup, the new head's
 * files and `.git` inside, a PR of the agent's change only); a changed lockfile starts cold; a pooled
 * sandbox of a `keepPrepared` schedule serves a moved base. For every provider with `findPreparedState`.
 */
export function testMovedBase(options: MovedBaseConformanceOptions): void {
  describe(`moved base: ${options.name}`, () => {
    it("starts from the older state and brings in what changed; a changed lockfile starts cold; a pooled sandbox from keepPrepared serves a moved base", async () => {
      await using repo = await createTestRepository({ "app.js": "original\n", "lib/util.js": "util v1\n", "old.js": "old\n", "package-lock.json": '{"v":1}\n', ".gitignore": ".deps/\n" });
      await using server = await startGitHttpServer({ root: repo.root, token: GIT_TOKEN, username: GIT_USER });
      const gitHost = createServedGitHost({ server, repository: repo, username: GIT_USER, token: GIT_TOKEN });
      const url = `${server.url}/repo.git`;
      await using model = await startScriptedModelServer({ apiKey: API_KEY, script: [...EDIT, ...EDIT, ...EDIT] });
      const modelConfig = { provider: "openai-compatible" as const, model: "scripted", baseURL: model.url, apiKey: API_KEY };
      const { provider, close } = options.provider();
      const task = async (extra: Partial<AgentTaskOptions> = {}) => {
        const events: AgentTaskEvent[] = [];
        // Asked while the sandbox is there (a container goes with its task).
        let fromState: Promise<boolean | undefined> = Promise.resolve(undefined);
        const onEvent = (event: AgentTaskEvent) => {
          events.push(event);
          if (event.type === "sandbox" && options.startedFromState) fromState = options.startedFromState(event.sandboxId);
        };
        const result: AgentTaskResult = await runAgentTask({ repo: url, gitHost, task: "Edit app.js", model: modelConfig, sandbox: provider, setupCommands: [SETUP], checks: [SHOW], ...extra, onEvent });
        expect(result.status).toBe("completed");
        const pushed = (await repo.git("diff", "--name-only", `${result.commit!}^`, result.commit!)).trim().split("\n");
        const shown = result.verification?.rounds[0]?.checks[0]?.outputTail.trim() ?? "";
        return { events, startedFromState: await fromState, pushed, shown, parent: (await repo.git("rev-parse", `${result.commit!}^`)).trim() };
      };
      try {
        const prepared = await prepareRepository({ repo: url, gitHost, sandbox: provider, setupCommands: [SETUP] });
        const head = await repo.commit({ "lib/util.js": "util v2\n", "lib/new.js": "new\n", "old.js": null });
        const moved = await task();
        expect(setupRan(moved.events)).toBe(false);
        expect(logLine(moved.events, "Started from the prepared state")).toContain(`at ${prepared.commit.slice(0, 12)} and brought it to ${head.slice(0, 12)}: 2 files brought in, 1 removed`);
        expect(moved.shown).toBe(`installed\nlib/util.js: util v2\nlib/new.js: new\nold.js: missing\n${head}`);
        expect([moved.pushed, moved.parent]).toEqual([["app.js"], head]);
        if (options.startedFromState) expect(moved.startedFromState).toBe(true);

        await repo.commit({ "package-lock.json": '{"v":2}\n' });
        const lockfile = await task();
        expect(setupRan(lockfile.events)).toBe(true);
        expect(logLine(lockfile.events, "Not starting from the prepared state")).toContain("setup inputs changed since (package-lock.json)");
        if (options.startedFromState) expect(lockfile.startedFromState).toBe(false);

        const kept = keepPrepared({ repo: url, gitHost, sandbox: provider, setupCommands: [SETUP], everyMs: 600_000 });
        const pool = createSandboxPool(provider, { size: 1, model: modelConfig, prepared: kept });
        try {
          await pool.whenReady();
          const state = kept.last!;
          const later = await repo.commit({ "lib/new.js": "newer\n" });
          const pooled = await task({ sandbox: pool });
          expect(pooled.events.find((event) => event.type === "sandbox")).toMatchObject({ pooled: true });
          expect(setupRan(pooled.events)).toBe(false);
          expect(logLine(pooled.events, "Started from the prepared state")).toContain(`at ${state.commit.slice(0, 12)} and brought it to ${later.slice(0, 12)}: 1 file brought in, 0 removed`);
          expect(pooled.shown).toBe(`installed\nlib/util.js: util v2\nlib/new.js: newer\nold.js: missing\n${later}`);
          expect([pooled.pushed, pooled.parent]).toEqual([["app.js"], later]);
        } finally {
          await kept.stop();
          await pool.close();
        }
      } finally {
        await close?.();
      }
    });
  });
}
