import { agentError, type ErrorCode } from "@running-agent/core";

/**
 * Loads an optional adapter package on demand, so that the CLI runs with only the core
 * installed. When the package is missing, the error says which package to install.
 */
export async function importAdapter<T>(packageName: string, code: ErrorCode, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if (isMissingPackage(error, packageName)) {
      throw agentError(
        code,
        `${packageName} is not installed. Install it next to the CLI (npm install -g ${packageName}, or add it to your project) and run again.`,
        { cause: error, details: { package: packageName } },
      );
    }
    throw error;
  }
}

/** True when the import failed because the package itself (not one of its dependencies) cannot be found. */
function isMissingPackage(error: unknown, packageName: string): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : "";
  return (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") && message.includes(`'${packageName}'`);
}
