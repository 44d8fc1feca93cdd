// The verify phase's own overhead, beyond the checks' run time: its runner (events, output tails,
// redaction, timeouts) against the same commands run by hand through session.exec in the same
// sandbox, alternating. Run with
//   pnpm --filter @running-agent/core exec vitest bench --run src/verify/verify-overhead.bench.ts
// vitest prints both side by side and how many times faster the faster one is.
import { afterAll, beforeAll, bench, describe } from "vitest";
import { createLocalSandbox } from "../sandbox-local/local-sandbox.js";
import type { SandboxSession } from "../spec/sandbox-spec.js";
import { Redactor } from "../redactor.js";
import { runChecks } from "./run-checks.js";
import type { CheckSpec } from "./check-types.js";

const CHECKS: CheckSpec[] = [
  { name: "true", command: "true" },
  { name: "node", command: "node -e 'console.log(1)'" },
  // About 200 KiB of output, so that streaming and the tail count.
  { name: "output", command: "seq 1 40000" },
];
const options = { iterations: 20, warmupIterations: 2, time: 0, warmupTime: 0 };

let session: SandboxSession;
const redactor = new Redactor(["bench-secret-value"]);
const signal = new AbortController().signal;

beforeAll(async () => {
  session = await createLocalSandbox().create({ taskId: "bench-verify" });
});
afterAll(async () => {
  await session?.destroy();
});

describe("verify: three checks in one bubblewrap sandbox", () => {
  bench(
    "runChecks (events, tails, redaction)",
    async () => {
      let events = 0;
      await runChecks({ session, checks: CHECKS, round: 0, signal, redact: (text) => redactor.redactText(text), emit: () => events++ });
    },
    options,
  );
  bench(
    "session.exec by hand",
    async () => {
      for (const check of CHECKS) await session.exec(["sh", "-c", check.command], { cwd: session.workdir, timeoutMs: 600_000 });
    },
    options,
  );
});
