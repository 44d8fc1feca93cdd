export * from "./offline.js";
export * from "./sandbox-conformance.js";
export * from "./git-host-conformance.js";
export * from "./expect-running-agent-error.js";
export * from "./private-tmpdir.js";
export * from "./moved-base-conformance.js";
