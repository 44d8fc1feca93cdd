import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

/**
 * Finds the standalone OpenCode binary of the `opencode-ai` npm package on this host: the
 * wrapper package's platform dependency (`opencode-linux-x64`, its `-baseline` build for CPUs
 * without AVX2, or `opencode-linux-arm64`). Returns undefined when none is installed.
 */
export function resolveOpencodeBinary(): string | undefined {
  let wrapperRequire: NodeJS.Require;
  try {
    const wrapperManifest = createRequire(import.meta.url).resolve("opencode-ai/package.json");
    wrapperRequire = createRequire(wrapperManifest);
  } catch {
    return undefined;
  }
  for (const name of platformPackages()) {
    try {
      const binary = join(dirname(wrapperRequire.resolve(`${name}/package.json`)), "bin", "opencode");
      if (existsSync(binary)) return binary;
    } catch {
      // Not installed for this platform: try the next candidate.
    }
  }
  return undefined;
}

function platformPackages(): string[] {
  if (process.platform !== "linux") return [];
  if (process.arch === "arm64") return ["opencode-linux-arm64", "opencode-linux-arm64-musl"];
  if (process.arch !== "x64") return [];
  return cpuHasAvx2() ? ["opencode-linux-x64", "opencode-linux-x64-baseline"] : ["opencode-linux-x64-baseline", "opencode-linux-x64"];
}

function cpuHasAvx2(): boolean {
  try {
    return /\bavx2\b/.test(readFileSync("/proc/cpuinfo", "utf8"));
  } catch {
    return true;
  }
}
