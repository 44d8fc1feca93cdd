import { describe, expect, it } from "vitest";
import { ErrorCode, runAgentTask } from "../index.js";
import { createTestRepository, expectRunningAgentError, startScriptedModelServer } from "../testing/index.js";
import { createStartAdmission, providerStartAdmission, startTimeoutForLoad, type StartAdmission } from "./start-admission.js";
import { createLocalSandbox } from "../sandbox-local/local-sandbox.js";

describe("createStartAdmission", () => {
  it("admits at most maxConcurrentStarts, in order, and a released turn goes to the next waiter once", async () => {
    const admission = createStartAdmission({ maxConcurrentStarts: 2 });
    const first = await admission.acquire();
    const second = await admission.acquire();
    const order: number[] = [];
    const third = admission.acquire().then((release) => (order.push(3), release));
    const fourth = admission.acquire().then((release) => (order.push(4), release));
    expect([admission.active, admission.waiting]).toEqual([2, 2]);
    first();
    first();
    const releaseThird = await third;
    expect([admission.active, admission.waiting, order]).toEqual([2, 1, [3]]);
    second();
    releaseThird();
    (await fourth)();
    expect([admission.active, admission.waiting, order]).toEqual([0, 0, [3, 4]]);
  });

  it("a waiter that aborts leaves the queue and never holds a turn", async () => {
    const admission = createStartAdmission({ maxConcurrentStarts: 1 });
    const held = await admission.acquire();
    const controller = new AbortController();
    const gaveUp = admission.acquire(controller.signal);
    const next = admission.acquire();
    controller.abort();
    expect((await expectRunningAgentError(gaveUp)).code).toBe(ErrorCode.ABORTED);
    expect(admission.waiting).toBe(1);
    held();
    (await next)();
    expect([admission.active, admission.waiting]).toEqual([0, 0]);
  });

  it("refuses a bound that is not a positive integer; a provider's bound is one admission per provider", () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => createStartAdmission({ maxConcurrentStarts: bad })).toThrow(/positive integer/);
    const provider = { maxConcurrentAgentStarts: 3 };
    expect(providerStartAdmission(provider)).toBe(providerStartAdmission(provider));
    expect(providerStartAdmission(provider).maxConcurrentStarts).toBe(3);
    expect(providerStartAdmission({})).not.toBe(providerStartAdmission(provider));
  });
});

/** An admission that records how many turns were held at once. */
function recording(inner: StartAdmission): StartAdmission & { maxActive: number; maxWaiting: number } {
  const stats = { maxActive: 0, maxWaiting: 0 };
  return Object.assign(stats, {
    get maxConcurrentStarts() {
      return inner.maxConcurrentStarts;
    },
    get active() {
      return inner.active;
    },
    get waiting() {
      return inner.waiting;
    },
    async acquire(signal?: AbortSignal) {
      const turn = inner.acquire(signal);
      stats.maxWaiting = Math.max(stats.maxWaiting, inner.waiting);
      const release = await turn;
      stats.maxActive = Math.max(stats.maxActive, inner.active);
      return release;
    },
  });
}

describe("startTimeoutForLoad", () => {
  it("gives 60 s up to one unit of load per core, stretches with the load, and stops at 5 minutes", () => {
    expect([0, 0.5, 1, 2, 4.5, 5, 50, Number.NaN].map(startTimeoutForLoad)).toEqual([60_000, 60_000, 60_000, 120_000, 270_000, 300_000, 300_000, 60_000]);
  });
});

describe("runAgentTask with a shared start admission", () => {
  it("8 tasks submitted together on this machine with 2 starts at a time all finish", async () => {
    await using repo = await createTestRepository({ "README.md": "# admission\n" });
    await using model = await startScriptedModelServer({ afterScript: { text: "Nothing to change." } });
    const admission = recording(createStartAdmission({ maxConcurrentStarts: 2 }));
    const sandbox = createLocalSandbox();
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, index) =>
        runAgentTask({
          repo: repo.path,
          task: `Look at the README (task ${index}).`,
          sandbox,
          model: { provider: "openai-compatible", model: "scripted-model", baseURL: model.url, apiKey: "admission-key" },
          agentStart: { admission },
        }),
      ),
    );
    expect(results.map((result) => result.status)).toEqual(Array(8).fill("no_changes"));
    expect(model.chatRequests.length).toBeGreaterThanOrEqual(8);
    // The bound held, and it was needed: some starts queued for a turn.
    expect(admission.maxActive).toBeLessThanOrEqual(2);
    expect(admission.maxWaiting).toBeGreaterThan(0);
    expect([admission.active, admission.waiting]).toEqual([0, 0]);
  });

  it("refuses agentStart options that are not what it takes, before anything is created", async () => {
    await using repo = await createTestRepository({ "README.md": "# admission\n" });
    const base = { repo: repo.path, task: "x", model: { provider: "openai-compatible" as const, model: "m", baseURL: "http://127.0.0.1:9/v1", apiKey: "k" } };
    expect((await expectRunningAgentError(runAgentTask({ ...base, agentStart: { timeoutMs: 0 } }))).code).toBe(ErrorCode.INVALID_OPTIONS);
    expect((await expectRunningAgentError(runAgentTask({ ...base, agentStart: { admission: {} as StartAdmission } }))).code).toBe(ErrorCode.INVALID_OPTIONS);
  });
});
