import { randomBytes } from "node:crypto";
import { afterAll, bench, describe } from "vitest";
import type { SandboxSession } from "../spec/sandbox-spec.js";
import { createLocalSandbox } from "./local-sandbox.js";

// Figures for the local sandbox: `pnpm vitest bench --run src/sandbox-local/local-sandbox.bench.ts`.
const opened: Array<Promise<SandboxSession>> = [];
afterAll(async () => {
  for (const session of opened) await (await session).destroy();
});

for (const isolation of ["bubblewrap", "none"] as const) {
  describe(`local sandbox, isolation ${isolation}`, () => {
    const provider = createLocalSandbox({ isolation });
    const eightMiB = new Uint8Array(randomBytes(8 * 1024 * 1024));
    let session: Promise<SandboxSession> | undefined;
    const shared = () => {
      if (!session) opened.push((session = provider.create({ taskId: "bench" })));
      return session;
    };
    const options = { iterations: 20, warmupIterations: 2, time: 0 };

    bench("create + destroy a session", async () => {
      const created = await provider.create({ taskId: "bench" });
      await created.destroy();
    }, options);

    bench("exec true", async () => {
      await (await shared()).exec(["true"]);
    }, options);

    bench("writeFile + readFile 8 MiB", async () => {
      await (await shared()).writeFile("large.bin", eightMiB);
      await (await shared()).readFile("large.bin");
    }, options);
  });
}
