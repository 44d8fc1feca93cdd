import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, readFile, realpath, symlink, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const packageRoot = join(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * Test support: a temp app with core built into its node_modules, the way an install from the
 * registry lays it out. The build goes into the app, so it never races a developer's own `dist`.
 * `dependencies: "declared"` links only core's declared dependencies (optional peers such as vitest
 * then cannot be resolved); `"workspace"` links the workspace's node_modules as a whole.
 * The caller removes the returned folder.
 */
export async function createAppWithBuiltCore(options: { prefix: string; type: "module" | "commonjs"; dependencies: "declared" | "workspace" }): Promise<string> {
  const app = await mkdtemp(join(tmpdir(), options.prefix));
  const installed = join(app, "node_modules", "@running-agent", "core");
  await mkdir(installed, { recursive: true });
  const tsup = join(dirname(createRequire(import.meta.url).resolve("tsup/package.json")), "dist", "cli-default.js");
  await run(process.execPath, [tsup, "--out-dir", join(installed, "dist"), "--no-dts", "--silent"], { cwd: packageRoot });
  await cp(join(packageRoot, "package.json"), join(installed, "package.json"));
  if (options.dependencies === "workspace") {
    await symlink(join(packageRoot, "node_modules"), join(installed, "node_modules"));
  } else {
    const manifest = JSON.parse(await readFile(join(packageRoot, "package.json"), "utf8")) as { dependencies: Record<string, string> };
    for (const name of Object.keys(manifest.dependencies)) {
      const link = join(installed, "node_modules", name);
      await mkdir(dirname(link), { recursive: true });
      await symlink(await realpath(join(packageRoot, "node_modules", name)), link);
    }
  }
  await writeFile(join(app, "package.json"), JSON.stringify({ name: `${options.type}-app`, private: true, type: options.type }));
  return app;
}
