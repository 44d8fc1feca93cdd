import { createHash } from "node:crypto";
import { realpathSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";

/** Label on every sandbox of this API server: which server (database) it belongs to. */
export const SERVER_LABEL = "running-agent.http-api";

/**
 * The labels that mark this server's sandboxes: {@link SERVER_LABEL} with a short hash of the
 * database file's real path. One server runs per database file, so the value tells this server's
 * sandboxes from those of another server or program on the same Engine, and stays the same
 * across restarts (reaping after a crash relies on that).
 */
export function serverLabels(databasePath: string): Record<string, string> {
  return { [SERVER_LABEL]: createHash("sha256").update(realDatabasePath(databasePath)).digest("hex").slice(0, 16) };
}

/** The file's real path; before its first start the file does not exist yet, so its folder's real path and its name. */
function realDatabasePath(databasePath: string): string {
  const absolute = resolve(databasePath);
  try {
    return realpathSync(absolute);
  } catch {
    try {
      return join(realpathSync(dirname(absolute)), basename(absolute));
    } catch {
      return absolute;
    }
  }
}
