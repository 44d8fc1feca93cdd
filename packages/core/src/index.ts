export * from "./errors.js";
export * from "./phases.js";
export * from "./events.js";
export * from "./changes.js";
export * from "./model.js";
export * from "./run-options.js";
export * from "./spec/sandbox-spec.js";
export * from "./spec/git-host-spec.js";
