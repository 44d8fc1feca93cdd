// The parts of the testing kit that run without a test runner: the demo, the examples and the local
// GitHub-compatible server use them at run time. Nothing reached from here may import vitest
// (offline.test.ts checks the built entry in an app without vitest).
export * from "./scripted-model-server.js";
export * from "./test-repository.js";
export * from "./git-http-server.js";
export * from "./git-http-backend.js";
export * from "./git-server-lifecycle.js";
export * from "./offline-model.js";
export * from "./network-probe.js";
export * from "./served-git-host.js";
