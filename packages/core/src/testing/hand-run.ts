// The exact bubblewrap flags and OpenCode setup the local sandbox and the engine use, so that a
// benchmark's hand-run baseline (`pnpm bench:start`) differs from the library only in orchestration.
// For the repository's benchmarks: not a stable API.
export { bubblewrapArguments, readSystemLayout, sandboxAccounts, SANDBOX_OPENCODE_BINARY, SANDBOX_SCRATCH, SANDBOX_WORKDIR, type BubblewrapMounts, type SystemLayout } from "../sandbox-local/bubblewrap.js";
export { resolveOpencodeBinary } from "../sandbox-local/opencode-binary.js";
export { buildOpencodeConfig, buildOpencodeEnv, opencodeFolders, preSeededArchive, preSeededConfigEntries, type OpencodeFolders } from "../agent/opencode-config.js";
