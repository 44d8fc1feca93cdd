// The parts of the testing kit that run without a test runner: the demo, the examples and the local
// GitHub-compatible server use them at run time. Nothing reached from here may import vitest
// (offline.test.ts checks the built entry in an app without vitest).
export * from "./scripted-model-server.js";
export * from "./test-repository.js";
export * from "./git-http-server.js";
export * from "./git-http-backend.js";
// The exact bubblewrap flags and OpenCode setup the local sandbox and the engine use, so that a
// benchmark's hand-run baseline differs from the library only in orchestration.
export { bubblewrapArguments, readSystemLayout, sandboxAccounts, SANDBOX_OPENCODE_BINARY, SANDBOX_SCRATCH, SANDBOX_WORKDIR } from "../sandbox-local/bubblewrap.js";
export { resolveOpencodeBinary } from "../sandbox-local/opencode-binary.js";
export { buildOpencodeConfig, buildOpencodeEnv, opencodeFolders, preSeededArchive } from "../agent/opencode-config.js";
