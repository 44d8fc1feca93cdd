import { access, constants } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { agentError, ErrorCode } from "@running-agent/core";
import { OPENCODE_VERSION } from "./default-image.js";

/** The npm platform package that holds OpenCode's Linux binary for an engine architecture (Docker's `Arch`, Node's `process.arch`). */
export function opencodePlatformPackage(architecture: string): string {
  if (architecture === "x86_64" || architecture === "amd64" || architecture === "x64") return "opencode-linux-x64";
  if (architecture === "aarch64" || architecture === "arm64") return "opencode-linux-arm64";
  throw agentError(ErrorCode.SANDBOX_IMAGE_BUILD_FAILED, `OpenCode ships no Linux binary for the engine's architecture ${architecture}.`);
}

/**
 * Finds OpenCode's Linux binary on this machine, from the `opencode-ai` dependency's platform
 * package (its postinstall may not have run, so the platform package is resolved directly).
 */
export async function findOpencodeBinary(architecture: string = process.arch): Promise<string> {
  const platformPackage = opencodePlatformPackage(architecture);
  let packageJson: string;
  try {
    const fromWrapper = createRequire(createRequire(import.meta.url).resolve("opencode-ai/package.json"));
    packageJson = fromWrapper.resolve(`${platformPackage}/package.json`);
  } catch (error) {
    throw agentError(
      ErrorCode.SANDBOX_IMAGE_BUILD_FAILED,
      `The OpenCode binary for this engine (${platformPackage}@${OPENCODE_VERSION}) is not installed here. Install it (npm install ${platformPackage}@${OPENCODE_VERSION}) or pass opencodeBinaryPath.`,
      { cause: error },
    );
  }
  const binary = join(dirname(packageJson), "bin", "opencode");
  await access(binary, constants.R_OK).catch((error: unknown) => {
    throw agentError(ErrorCode.SANDBOX_IMAGE_BUILD_FAILED, `The OpenCode binary is missing at ${binary}.`, { cause: error });
  });
  return binary;
}
