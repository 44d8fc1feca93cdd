import { testSandboxProvider } from "@running-agent/core/testing";
import { afterAll, describe, expect } from "vitest";
import { createModalSandbox, type ModalSandboxProvider } from "./index.js";

// Runs only where Modal credentials are in the environment (never in this project's CI, which has
// no route to Modal); the same suite runs against the local Modal-protocol server everywhere.
const hasCredentials = Boolean(process.env.MODAL_TOKEN_ID && process.env.MODAL_TOKEN_SECRET);
const skipReason = "MODAL_TOKEN_ID and MODAL_TOKEN_SECRET are not set";
if (!hasCredentials) console.info(`Skipping the sandbox conformance suite against real Modal: ${skipReason}.`);

describe.skipIf(!hasCredentials)(`against real Modal${hasCredentials ? "" : ` (skipped: ${skipReason})`}`, () => {
  let provider: ModalSandboxProvider | undefined;

  testSandboxProvider({
    name: "modal (real Modal)",
    createProvider: () => (provider = createModalSandbox({ app: process.env.RUNNING_AGENT_MODAL_APP ?? "running-agent-tests" })),
    testTimeoutMs: 300_000,
    skip: {
      networkAllowList: "Modal applies its own allow-lists on its network, which cannot reach this machine's loopback, where the case's allowed host is",
      networkBlockedEvents: "Modal does not report refused connections",
    },
    // Modal's tunnels are TLS: probe with HTTPS against a small Node server (the default image has Node).
    portServer: {
      command: (port) => ["node", "-e", `require("http").createServer((q, s) => s.end("modal-port-ok")).listen(${port}, "0.0.0.0")`],
      async probe(exposed) {
        const deadline = Date.now() + 120_000;
        for (;;) {
          try {
            const response = await fetch(exposed.url, { headers: exposed.headers ?? {} });
            expect(await response.text()).toBe("modal-port-ok");
            return;
          } catch (error) {
            if (Date.now() > deadline) throw error;
            await new Promise((resolve) => setTimeout(resolve, 1000));
          }
        }
      },
    },
  });

  afterAll(async () => {
    // Whatever a failed test left behind on the real service.
    await provider?.reapOrphans({ olderThanMs: 0 });
  });
});
