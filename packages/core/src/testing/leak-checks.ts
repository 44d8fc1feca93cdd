import { readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { createLocalSandbox } from "../sandbox-local/local-sandbox.js";
import type { SandboxProvider } from "../spec/sandbox-spec.js";

/**
 * Test-only helpers for "nothing is created, nothing is left" assertions. Not exported from
 * the testing entry: core's own tests share them.
 */

/** Wraps the local sandbox to count sessions: the point is that none is opened. */
export function countingSandbox(): { provider: SandboxProvider; created: () => number } {
  const inner = createLocalSandbox();
  let count = 0;
  return {
    provider: new Proxy(inner, {
      get(target, property, receiver) {
        if (property !== "create") return Reflect.get(target, property, receiver);
        return (options: Parameters<SandboxProvider["create"]>[0]) => {
          count++;
          return target.create(options);
        };
      },
    }),
    created: () => count,
  };
}

/** The loop's own temp folders under the current TMPDIR (test repositories excluded). */
export function ourTempFolders(): string[] {
  return readdirSync(tmpdir()).filter((name) => name.startsWith("running-agent-") && !name.startsWith("running-agent-test-repo-"));
}
