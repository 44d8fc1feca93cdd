import { afterAll, beforeAll, expect, test } from "vitest";
import { createModalSandbox } from "./index.js";
import { startModalServer, type ModalServer } from "./testing/index.js";

let server: ModalServer;
beforeAll(async () => {
  server = await startModalServer();
});
afterAll(async () => {
  await server?.close();
});

test("slice: create, exec, terminate through the SDK", async () => {
  const provider = createModalSandbox({ serverUrl: server.url, tokenId: server.tokenId, tokenSecret: server.tokenSecret });
  const session = await provider.create({ taskId: "t1", secrets: { API_KEY: "s3cret" } });
  const chunks: string[] = [];
  const result = await session.exec(["sh", "-c", "echo out; echo err >&2; cat; echo $API_KEY; pwd; exit 3"], { stdin: "in\n", onStdout: (c) => chunks.push(Buffer.from(c).toString()) });
  console.log(result, server.calls);
  expect(result.exitCode).toBe(3);
  await session.destroy();
  expect(server.liveSandboxes()).toEqual([]);
});
