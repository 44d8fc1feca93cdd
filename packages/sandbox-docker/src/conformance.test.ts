import { testSandboxProvider } from "@running-agent/core/testing";
import { afterAll } from "vitest";
import { createDockerSandbox } from "./create-docker-sandbox.js";
import { createDockerPreparedStateCache } from "./docker-prepared-state-cache.js";
import { expectNoContainers, isHostProcessAlive, TEST_RUN_LABEL } from "./test-engine.js";
import { randomUUID } from "node:crypto";

// The whole spec against a real engine, with host networking for the "open" cases (the port
// test's server listens on the host's loopback); the network cases run enforced, behind the egress
// proxy's relays. Processes are checked from the host: a local engine's containers are processes
// of this kernel.
const run = randomUUID();

testSandboxProvider({
  name: "docker (host network)",
  createProvider: () => createDockerSandbox({ network: "host", labels: { [TEST_RUN_LABEL]: run } }),
  isProcessAlive: isHostProcessAlive,
});

// The same spec with every command run as a user that is not root (settings.user).
testSandboxProvider({
  name: "docker (host network, user 1000:1000)",
  createProvider: () => createDockerSandbox({ network: "host", user: "1000:1000", labels: { [TEST_RUN_LABEL]: run } }),
  isProcessAlive: isHostProcessAlive,
  // The relays run as the container's root whoever runs the commands; the user's own traffic through them is run-agent-task-docker's user test.
  skip: {
    networkAllowList: "the same relays as the suite above (CI time)",
    networkBlockedEvents: "the same relays as the suite above (CI time)",
  },
});

// With prepared states the task's environment goes on each command and the scratch folder is a volume:
// the spec must hold the same (21 s here, worth it for the secret and file cases).
const cache = createDockerPreparedStateCache({ name: `conformance-${run.slice(0, 8)}` });
testSandboxProvider({
  name: "docker (host network, prepared states)",
  createProvider: () => createDockerSandbox({ network: "host", labels: { [TEST_RUN_LABEL]: run }, preparedStates: cache }),
  isProcessAlive: isHostProcessAlive,
});

afterAll(async () => {
  await expectNoContainers(run);
  await cache.invalidate();
});
