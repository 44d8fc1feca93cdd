import { afterAll, beforeAll, expect, it } from "vitest";
import { createModalSandbox } from "./index.js";
import { startModalServer, type ModalServer } from "./testing/index.js";

// Prints how long the adapter's round trips take through the official SDK against the local server
// (create, exec, file write and read, destroy). Figures only: no timing is asserted.
let server: ModalServer;

beforeAll(async () => {
  server = await startModalServer();
});

afterAll(async () => {
  await server?.close();
});

it("measures create, exec, writeFile/readFile and destroy through the SDK (figures printed)", async () => {
  const provider = createModalSandbox({ serverUrl: server.url, tokenId: server.tokenId, tokenSecret: server.tokenSecret, app: "latency" });
  await provider.validate();
  const samples: Record<string, number[]> = { create: [], exec: [], "writeFile+readFile (1 MiB)": [], destroy: [] };
  const time = async <T>(name: string, action: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    const result = await action();
    samples[name]!.push(performance.now() - started);
    return result;
  };
  const payload = new Uint8Array(1024 * 1024).fill(7);
  for (let round = 0; round < 5; round++) {
    const session = await time("create", () => provider.create({ taskId: `latency-${round}` }));
    expect((await time("exec", () => session.exec(["true"]))).exitCode).toBe(0);
    const read = await time("writeFile+readFile (1 MiB)", async () => {
      await session.writeFile("payload.bin", payload);
      return session.readFile("payload.bin");
    });
    expect(read.byteLength).toBe(payload.byteLength);
    await time("destroy", () => session.destroy());
  }
  const median = (values: number[]) => [...values].sort((left, right) => left - right)[Math.floor(values.length / 2)]!;
  console.info(
    `modal adapter on the local server, median of 5 (ms): ${Object.entries(samples)
      .map(([name, values]) => `${name} ${median(values).toFixed(1)}`)
      .join(", ")}`,
  );
  expect(server.liveSandboxes()).toEqual([]);
});
