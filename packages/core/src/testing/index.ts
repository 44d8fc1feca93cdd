export {};
export * from "./sandbox-conformance.js";
