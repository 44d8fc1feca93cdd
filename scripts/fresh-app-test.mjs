#!/usr/bin/env node
// A newcomer's first install, offline: a local registry (verdaccio 5) on loopback, `pnpm publish -r`
// into it (what `changeset publish` runs), then a fresh npm app and a fresh pnpm app (with vitest 4)
// outside the workspace install every package from it, import and require every entry point, run the
// CLI, type-check every entry point and the README snippet with skipLibCheck off, and run the packed
// core README's embedding snippet against the scripted model (startOfflineModel). The registry serves no uplink: every other package comes from what this workspace
// installed (node_modules/.pnpm), packed again, so nothing but loopback is reached. Run after the build.
// RUNNING_AGENT_FRESH_APP_KEEP=1 keeps the work folder for a look.
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, realpathSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "..");
const started = performance.now();
const seconds = () => `${((performance.now() - started) / 1000).toFixed(1)} s`;
const failures = [];
let passed = 0;
function check(name, ok, detail = "") {
  if (ok) passed += 1;
  else failures.push(`${name}${detail ? `: ${detail}` : ""}`);
  console.log(`${ok ? "ok  " : "FAIL"} ${name} [${seconds()}]${!ok && detail ? `\n     ${detail.split("\n").join("\n     ")}` : ""}`);
}

/** The workspace's published packages: folder and manifest. */
async function workspacePackages() {
  const names = await readdir(join(root, "packages"));
  const packages = [];
  for (const name of names.sort()) {
    const folder = join(root, "packages", name);
    const manifest = JSON.parse(await readFile(join(folder, "package.json"), "utf8"));
    if (!manifest.private) packages.push({ folder, manifest });
  }
  return packages;
}

/** Node's lookup of `name` from `from`: the nearest node_modules/<name> up the tree, as a real path. */
function findInstalled(name, from) {
  for (let folder = from; ; folder = dirname(folder)) {
    const candidate = join(folder, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return realpathSync(candidate);
    if (dirname(folder) === folder) return undefined;
  }
}

/**
 * Every external package (name@version) our packages and the app's tools (typescript,
 * @types/node, vitest) need, found as Node would from the workspace's install. Optional
 * dependencies and peers this machine did not install are left out of the mirrored manifests.
 */
async function externalClosure(packages) {
  const found = new Map();
  const queue = [];
  const want = (name, from, optional) => queue.push({ name, from, optional });
  for (const { folder, manifest } of packages) {
    for (const field of ["dependencies", "optionalDependencies", "peerDependencies"]) {
      for (const name of Object.keys(manifest[field] ?? {})) {
        if (!name.startsWith("@running-agent/")) want(name, folder, field !== "dependencies");
      }
    }
  }
  for (const name of ["typescript", "@types/node", "vitest"]) want(name, root, false);
  while (queue.length > 0) {
    const { name, from, optional } = queue.shift();
    const folder = findInstalled(name, from);
    if (!folder) {
      if (!optional) throw new Error(`${name}, needed from ${from}, is not installed in the workspace`);
      continue;
    }
    const manifest = JSON.parse(await readFile(join(folder, "package.json"), "utf8"));
    const key = `${manifest.name}@${manifest.version}`;
    if (found.has(key)) continue;
    found.set(key, { folder, manifest });
    for (const field of ["dependencies", "optionalDependencies", "peerDependencies"]) {
      for (const dependency of Object.keys(manifest[field] ?? {})) {
        want(dependency, folder, field !== "dependencies");
      }
    }
  }
  return found;
}

/** The manifest as the mirror serves it: only dependencies the mirror holds, no install-time fields. */
function mirroredManifest(manifest, held) {
  const copy = Object.fromEntries(Object.entries(manifest).filter(([key]) => !key.startsWith("_")));
  delete copy.devDependencies;
  for (const field of ["optionalDependencies", "peerDependencies"]) {
    if (!copy[field]) continue;
    copy[field] = Object.fromEntries(Object.entries(copy[field]).filter(([name]) => held.has(name)));
  }
  if (copy.peerDependenciesMeta) {
    copy.peerDependenciesMeta = Object.fromEntries(
      Object.entries(copy.peerDependenciesMeta).filter(([name]) => held.has(name)),
    );
  }
  return copy;
}

/** Writes verdaccio's local storage for every mirrored package: one packument and its tarballs. */
async function writeMirror(storage, closure, registryUrl) {
  const held = new Set([...closure.values()].map(({ manifest }) => manifest.name));
  const byName = new Map();
  for (const entry of closure.values()) {
    if (!byName.has(entry.manifest.name)) byName.set(entry.manifest.name, []);
    byName.get(entry.manifest.name).push(entry);
  }
  const jobs = [...byName.entries()];
  const writeOne = async ([name, entries]) => {
    const folder = join(storage, name);
    await mkdir(folder, { recursive: true });
    const versions = {};
    const attachments = {};
    for (const { folder: source, manifest } of entries) {
      const file = `${basename(name)}-${manifest.version}.tgz`;
      const tarball = join(folder, file);
      // `package/` as the registry's tarballs have it; hard links (pnpm's store links identical files)
      // as plain files, since npm drops link entries; gzip -1: the OpenCode binaries are 177 MB each.
      await run("tar", [
        "-c", "-I", "gzip -1", "-f", tarball, "--exclude=./node_modules", "--hard-dereference",
        "-C", source, "--transform", "s,^\\.,package,", ".",
      ]);
      const bytes = await readFile(tarball);
      versions[manifest.version] = {
        ...mirroredManifest(manifest, held),
        dist: {
          tarball: `${registryUrl}${name}/-/${file}`,
          shasum: createHash("sha1").update(bytes).digest("hex"),
          integrity: `sha512-${createHash("sha512").update(bytes).digest("base64")}`,
        },
      };
      attachments[file] = { shasum: versions[manifest.version].dist.shasum, version: manifest.version };
    }
    const latest = Object.keys(versions).sort((a, b) => a.localeCompare(b, "en", { numeric: true })).at(-1);
    const packument = {
      name,
      versions,
      "dist-tags": { latest },
      time: Object.fromEntries(Object.keys(versions).map((version) => [version, new Date(0).toISOString()])),
      _uplinks: {},
      _distfiles: {},
      _attachments: attachments,
      _rev: "1-0000000000000000",
    };
    await writeFile(join(folder, "package.json"), JSON.stringify(packument));
  };
  const workers = Array.from({ length: 2 }, async () => {
    while (jobs.length > 0) await writeOne(jobs.shift());
  });
  await Promise.all(workers);
  return byName.size;
}

async function freePort() {
  const server = createServer();
  await new Promise((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address();
  await new Promise((done) => server.close(done));
  return port;
}

/** Starts verdaccio on loopback with `storage`; resolves once it answers. */
async function startRegistry(work, storage) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/`;
  const config = join(work, "verdaccio.yaml");
  await writeFile(
    config,
    [
      `storage: ${storage}`,
      "auth:",
      "  htpasswd:",
      `    file: ${join(work, "htpasswd")}`,
      "uplinks: {}",
      "packages:",
      "  '**':",
      "    access: $all",
      "    publish: $authenticated",
      "max_body_size: 50mb",
      "log: { type: stdout, format: pretty, level: warn }",
      "",
    ].join("\n"),
  );
  const verdaccio = join(realpathSync(join(root, "node_modules", "verdaccio")), "bin", "verdaccio");
  const child = spawn(process.execPath, [verdaccio, "--config", config, "--listen", `127.0.0.1:${port}`], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  const exited = new Promise((done) => child.once("exit", done));
  for (;;) {
    if (child.exitCode !== null) throw new Error(`verdaccio exited: ${output}`);
    try {
      if ((await fetch(`${url}-/ping`)).ok) break;
    } catch {
      // Not listening yet: the ping is the event this waits for.
    }
    await Promise.race([exited, new Promise((done) => setTimeout(done, 200))]);
  }
  return {
    url,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await exited;
      }
    },
  };
}

/** Creates a registry user and returns its token, as `npm adduser` would. */
async function registryToken(url) {
  const response = await fetch(`${url}-/user/org.couchdb.user:fresh-app`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "fresh-app", password: "fresh-app-password", type: "user" }),
  });
  if (!response.ok) throw new Error(`registry user: ${response.status} ${await response.text()}`);
  return (await response.json()).token;
}

/** A checker run inside an app: imports and requires every entry point of every package. */
const entryPointChecker = `
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
const require = createRequire(import.meta.url);
const [names, withVitest] = [JSON.parse(process.argv[2]), process.argv[3] === "vitest"];
const results = [];
for (const name of names) {
  const manifest = JSON.parse(readFileSync(new URL("./node_modules/" + name + "/package.json", import.meta.url), "utf8"));
  for (const subpath of Object.keys(manifest.exports)) {
    if (subpath === "./package.json") continue;
    const specifier = name + subpath.slice(1);
    for (const how of ["import", "require"]) {
      try {
        const module = how === "import" ? await import(specifier) : require(specifier);
        results.push({ specifier, how, ok: Object.keys(module).length > 0, detail: "no exports" });
      } catch (error) {
        // Without vitest, an entry point that needs it must say so, and nothing else may fail.
        const needsVitest = !withVitest && /vitest/.test(String(error?.message));
        results.push({ specifier, how, ok: needsVitest, skipped: needsVitest, detail: String(error?.stack ?? error) });
      }
    }
  }
}
console.log(JSON.stringify(results));
`;

/** Drives the packed README's snippet: a test repository, the offline scripted model, the snippet's own process. */
const snippetRunner = `
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { createTestRepository, startOfflineModel } from "@running-agent/core/offline";
const run = promisify(execFile);
const repo = await createTestRepository({ "src/math.ts": "export const add = (a, b) => a + b;\\n" });
const offline = await startOfflineModel();
try {
  const { stdout, stderr } = await run(process.execPath, ["readme-snippet.mjs", repo.path], {
    env: {
      ...process.env,
      MODEL: "openai-compatible/" + offline.model.model,
      OPENAI_COMPATIBLE_BASE_URL: offline.model.baseURL,
      OPENAI_COMPATIBLE_API_KEY: offline.model.apiKey,
    },
    timeout: 120_000,
  });
  const [status, branch, url] = stdout.trim().split("\\n").at(-1).split(" ");
  const note = status === "completed" ? await repo.git("show", branch + ":RUNNING_AGENT_TASK.md") : "";
  // The CLI's offline mode, as the README's npx line runs it.
  const cli = await run("node_modules/.bin/running-agent", ["run", "--repo", repo.path, "--task", "Note the plan", "--scripted-model", "--json"], { timeout: 120_000 })
    .then((result) => JSON.parse(result.stdout), (error) => ({ status: "error", error: String(error.stderr || error.message) }));
  console.log(JSON.stringify({ status, branch, url, note, stdout, stderr, cli }));
} finally {
  await offline.close();
  await repo.remove();
}
`;

const typeCheckConfig = {
  compilerOptions: {
    target: "ES2022",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    strict: true,
    skipLibCheck: false,
    noEmit: true,
    allowJs: true,
    checkJs: true,
    types: ["node"],
  },
  include: ["types-check.ts", "readme-snippet.mjs"],
};

async function checkApp(kind, app, names, env, withVitest) {
  const entries = JSON.parse(
    (await run(process.execPath, ["check-entry-points.mjs", JSON.stringify(names), withVitest ? "vitest" : ""], { cwd: app, env })).stdout,
  );
  const bad = entries.filter((entry) => !entry.ok);
  const skipped = entries.filter((entry) => entry.skipped).map((entry) => `${entry.how} ${entry.specifier}`);
  check(
    `${kind}: import and require every entry point (${entries.length - skipped.length} loaded${skipped.length ? `, ${skipped.length} say they need vitest` : ""})`,
    bad.length === 0 && entries.length > 0,
    bad.map((entry) => `${entry.how} ${entry.specifier}: ${entry.detail}`).join("\n"),
  );

  const help = await run(join(app, "node_modules", ".bin", "running-agent"), ["--help"], { cwd: app, env }).then(
    (result) => result.stdout,
    (error) => String(error.stderr || error.message),
  );
  check(`${kind}: the running-agent bin prints its help`, /--repo/.test(help) && /--task/.test(help), help.slice(0, 400));

  const typeCheck = await run(process.execPath, [join(app, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"], {
    cwd: app,
    env,
  }).then(
    () => "",
    (error) => String(error.stdout || error.message),
  );
  check(`${kind}: tsc with skipLibCheck false on every entry point and the README snippet`, typeCheck === "", typeCheck.slice(0, 3000));

  const snippet = await run(process.execPath, ["run-snippet.mjs"], { cwd: app, env, timeout: 150_000 }).then(
    (result) => JSON.parse(result.stdout.trim().split("\n").at(-1)),
    (error) => ({ status: "error", stdout: String(error.stdout), stderr: String(error.stderr || error.message) }),
  );
  check(
    `${kind}: the packed README's snippet opens a change request with the scripted model's edit`,
    snippet.status === "completed" && /^local:\/\//.test(snippet.url) && /Add a multiply/.test(snippet.note) &&
      snippet.stdout.includes("pull-request completed"),
    `${snippet.status}\n${snippet.stdout}\n${snippet.stderr}`.slice(0, 3000),
  );
  check(
    `${kind}: running-agent run --scripted-model opens a change request offline`,
    snippet.cli?.status === "completed" && snippet.cli.changes?.some((change) => change.path === "RUNNING_AGENT_TASK.md"),
    JSON.stringify(snippet.cli ?? {}).slice(0, 3000),
  );
}

async function writeApp(app, names, readmeSnippet, extra) {
  await mkdir(app, { recursive: true });
  const dependencies = Object.fromEntries(names.map((name) => [name, "^0.1.0"]));
  await writeFile(
    join(app, "package.json"),
    JSON.stringify({ name: basename(app), private: true, type: "module", dependencies: { ...dependencies, ...extra } }, null, 2),
  );
  await writeFile(join(app, "check-entry-points.mjs"), entryPointChecker);
  await writeFile(join(app, "run-snippet.mjs"), snippetRunner);
  await writeFile(join(app, "readme-snippet.mjs"), readmeSnippet);
  await writeFile(join(app, "tsconfig.json"), JSON.stringify(typeCheckConfig, null, 2));
}

/** A type-level use of every entry point: the whole published declaration graph gets checked. */
async function writeTypesCheck(app, names, withVitest) {
  const lines = [];
  let index = 0;
  for (const name of names) {
    const manifest = JSON.parse(await readFile(join(app, "node_modules", name, "package.json"), "utf8"));
    for (const subpath of Object.keys(manifest.exports)) {
      if (subpath === "./package.json") continue;
      if (!withVitest && subpath === "./testing") continue;
      lines.push(`import type * as entry${index} from "${name}${subpath.slice(1)}";`, `export type Entry${index} = typeof entry${index};`);
      index += 1;
    }
  }
  await writeFile(join(app, "types-check.ts"), `${lines.join("\n")}\n`);
}

const work = await mkdtemp(join(tmpdir(), "fresh-app-"));
let registry;
try {
  const packages = await workspacePackages();
  const names = packages.map(({ manifest }) => manifest.name);
  const storage = join(work, "storage");
  // The port is not known before the start; verdaccio rewrites each tarball URL to the one asked.
  const closure = await externalClosure(packages);
  const mirrored = await writeMirror(storage, closure, "http://127.0.0.1/");
  console.log(`mirror: ${closure.size} versions of ${mirrored} external packages, from the workspace's install (${seconds()})`);
  registry = await startRegistry(work, storage);
  const token = await registryToken(registry.url);
  const userconfig = join(work, "npmrc");
  const host = registry.url.replace(/^http:/, "");
  await writeFile(userconfig, `registry=${registry.url}\n${host}:_authToken=${token}\nupdate-notifier=false\nfund=false\naudit=false\n`);
  const env = {
    ...process.env,
    npm_config_userconfig: userconfig,
    npm_config_registry: registry.url,
    npm_config_cache: join(work, "npm-cache"),
    npm_config_store_dir: join(work, "pnpm-store"),
    npm_config_cache_dir: join(work, "pnpm-cache"),
    npm_config_update_notifier: "false",
  };

  // What `changeset publish` runs underneath (pnpm publish, publishConfig applied), for every
  // package at once: 8 s here against 33 s for changeset publish, which asks the registry per package first.
  const published = await run("pnpm", ["publish", "-r", "--no-git-checks", "--filter", "./packages/*"], {
    cwd: root,
    env,
  }).then(
    (result) => `${result.stdout}${result.stderr}`,
    (error) => `FAILED ${error.stdout}${error.stderr}`,
  );
  const versions = await Promise.all(
    names.map(async (name) => (await fetch(`${registry.url}${name.replace("/", "%2f")}`)).ok),
  );
  check(`pnpm publish -r puts all ${names.length} packages in the local registry`, versions.every(Boolean), published);
  if (!versions.every(Boolean)) throw new Error("nothing to install");

  const readme = await readFile(join(root, "packages", "core", "README.md"), "utf8");
  const readmeSnippet = /```js\n([\s\S]*?)```/.exec(readme)[1];

  // The two apps share nothing but the registry: they run side by side.
  const npmApp = join(work, "npm-app");
  const pnpmApp = join(work, "pnpm-app");
  await Promise.all([
    (async () => {
      await writeApp(npmApp, names, readmeSnippet, {});
      // Install scripts off: better-sqlite3's would try to download a prebuilt binary; the mirrored
      // tarball carries the one built here. OpenCode's binary is found without its postinstall.
      const npmInstall = await run("npm", ["install", "--ignore-scripts", "--no-audit", "--no-fund", "-D", "typescript", "@types/node"], {
        cwd: npmApp,
        env,
      }).then(() => "", (error) => `${error.stdout}${error.stderr}`);
      check("npm app: npm install of every package from the registry", npmInstall === "", npmInstall.slice(-3000));
      if (npmInstall === "") {
        await writeTypesCheck(npmApp, names, false);
        await checkApp("npm app", npmApp, names, env, false);
      }
    })(),
    (async () => {
      await writeApp(pnpmApp, names, readmeSnippet, {});
      const pnpmInstall = await run("pnpm", ["add", "vitest@^4.1.12", "typescript", "@types/node"], { cwd: pnpmApp, env }).then(
        () => "",
        (error) => `${error.stdout}${error.stderr}`,
      );
      check("pnpm app: pnpm install of every package and vitest 4 from the registry", pnpmInstall === "", pnpmInstall.slice(-3000));
      if (pnpmInstall === "") {
        await writeTypesCheck(pnpmApp, names, true);
        await checkApp("pnpm app", pnpmApp, names, env, true);
      }
    })(),
  ]);
} catch (error) {
  check("fresh-app test ran to its end", false, String(error?.stack ?? error));
} finally {
  await registry?.stop();
  if (process.env.RUNNING_AGENT_FRESH_APP_KEEP) console.log(`kept ${work}`);
  else await rm(work, { recursive: true, force: true });
}
console.log(`fresh-app test took ${seconds()}`);
console.log(`fresh-app: ${passed} passed, ${failures.length} failed`);
process.exit(failures.length > 0 ? 1 : 0);
