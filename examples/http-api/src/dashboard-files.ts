import { existsSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import sirv from "sirv";

/** Serves one request from the dashboard's build folder; false when no file matches (the caller answers 404). */
export type DashboardFiles = (request: IncomingMessage, response: ServerResponse) => boolean;

/** Vite's default folder for fingerprinted files: their names change with their content. */
const HASHED_ASSETS = /^\/assets\//;

/**
 * Serves the built dashboard (index.html at `/`, its assets) with sirv. Every request looks the
 * file up again, so that rebuilding the dashboard needs no restart; sirv only serves paths that
 * stay inside the folder after decoding. Dotfiles are never served.
 */
export function createDashboardFiles(directory: string): DashboardFiles {
  const serve = sirv(resolve(directory), {
    dev: true,
    etag: true,
    setHeaders: (response, pathname) => {
      response.setHeader("cache-control", HASHED_ASSETS.test(pathname) ? "public, max-age=31536000, immutable" : "no-cache");
      response.setHeader("x-content-type-options", "nosniff");
    },
  });
  return (request, response) => {
    // sirv checks that a path stays inside the folder; refusing every segment that starts with a dot
    // also keeps `..` out before it gets there, and dotfiles (a stray .env), which its lookup mode would serve.
    let decoded: string;
    try {
      // The raw target, as sirv reads it (a parsed URL would already have resolved the dots away).
      decoded = decodeURIComponent((request.url ?? "/").split("?")[0]!);
    } catch {
      return false;
    }
    if (decoded.split(/[\\/]/).some((segment) => segment.startsWith("."))) return false;
    let found = true;
    serve(request, response, () => {
      found = false;
    });
    return found;
  };
}

/** The dashboard's build folder beside this example (`examples/dashboard/dist`), when it has been built. */
export function defaultDashboardDirectory(): string | undefined {
  const directory = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "dashboard", "dist");
  return existsSync(join(directory, "index.html")) ? directory : undefined;
}
