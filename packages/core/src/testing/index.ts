export * from "./scripted-model-server.js";
export * from "./test-repository.js";
export * from "./sandbox-conformance.js";
export * from "./git-http-server.js";
export * from "./git-host-conformance.js";
export * from "./git-http-backend.js";
export * from "./expect-running-agent-error.js";
