import { readdirSync, readFileSync } from "node:fs";
import { testSandboxProvider } from "@running-agent/core/testing";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createModalSandbox } from "./index.js";
import { startModalServer, type ModalServer } from "./testing/index.js";

let server: ModalServer;

beforeAll(async () => {
  server = await startModalServer();
});

afterAll(async () => {
  await server?.close();
});

testSandboxProvider({
  name: "modal (local Modal-protocol server)",
  createProvider: () => createModalSandbox({ serverUrl: server.url, tokenId: server.tokenId, tokenSecret: server.tokenSecret, app: "conformance" }),
  // The local server's sandboxes are host processes, so the host can see whether any is left.
  isProcessAlive: (marker) => hostProcessWithArgument(marker),
});

it("leaves no live sandbox on the server once the suite has destroyed its sessions", () => {
  expect(server.liveSandboxes()).toEqual([]);
});

function hostProcessWithArgument(marker: string): boolean {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").includes(marker)) return true;
    } catch {
      // Ended while we looked.
    }
  }
  return false;
}
