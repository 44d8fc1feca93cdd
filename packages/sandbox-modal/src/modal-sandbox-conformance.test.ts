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
  // Modal enforces the policy itself (names to outboundDomainAllowlist, addresses and CIDRs to
  // outboundCidrAllowlist; the mapping is checked against the create request in modal-sandbox-errors.test.ts).
  skip: {
    networkAllowList: "Modal maps the policy to its own outboundDomainAllowlist and outboundCidrAllowlist, applied on Modal's network, which cannot reach this machine's loopback (and the local protocol server applies no allow-list)",
    networkBlockedEvents: "Modal maps the policy to its own allow-lists and does not report refused connections, so there is nothing to see on the host",
  },
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
