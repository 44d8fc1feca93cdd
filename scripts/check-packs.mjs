#!/usr/bin/env node
// Packs each published package as `pnpm publish` would and reads the tarball: the packed
// package.json must carry no `source` export condition (the workspace resolves ./src/*.ts
// through it, and src/ is not in the tarball), and every path it names (exports, main, types,
// bin) and the LICENSE must be in the tarball. The same tarball goes through attw
// (@arethetypeswrong/cli, the ESM-only profile: every entry point's types resolve under node16 from
// ESM and under bundlers). Run after the build, with package folders as arguments or none for every
// packages/*.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const attw = join(root, "node_modules", ".bin", "attw");
const folders = process.argv.length > 2
  ? process.argv.slice(2).map((folder) => resolve(folder))
  : readdirSync(join(root, "packages")).map((name) => join(root, "packages", name));

/** Every target path under an exports value, with the condition path leading to it. */
function* exportTargets(value, at) {
  if (typeof value === "string") yield { at, target: value };
  else if (Array.isArray(value)) for (const item of value) yield* exportTargets(item, at);
  else if (value && typeof value === "object") {
    for (const [key, inner] of Object.entries(value)) yield* exportTargets(inner, [...at, key]);
  }
}

const problems = [];
for (const folder of folders) {
  const manifest = JSON.parse(readFileSync(join(folder, "package.json"), "utf8"));
  if (manifest.private) continue;
  const work = mkdtempSync(join(tmpdir(), "check-packs-"));
  try {
    const packed = JSON.parse(
      execFileSync("pnpm", ["pack", "--json", "--pack-destination", work], { cwd: folder, encoding: "utf8" }),
    );
    execFileSync("tar", ["xzf", packed.filename, "-C", work]);
    const unpacked = join(work, "package");
    const published = JSON.parse(readFileSync(join(unpacked, "package.json"), "utf8"));
    const report = (message) => problems.push(`${manifest.name}: ${message}`);
    const paths = [];
    for (const { at, target } of exportTargets(published.exports ?? {}, [])) {
      if (at.includes("source")) report(`exports ${at.join(" > ")} is a source condition (${target})`);
      paths.push({ field: `exports ${at.join(" > ")}`, target });
    }
    for (const field of ["main", "types", "module"]) {
      if (published[field]) paths.push({ field, target: published[field] });
    }
    const bin = typeof published.bin === "string" ? { [published.name]: published.bin } : (published.bin ?? {});
    for (const [name, target] of Object.entries(bin)) paths.push({ field: `bin ${name}`, target });
    for (const { field, target } of paths) {
      if (target.includes("*")) report(`${field} is a pattern (${target}): this check cannot follow it`);
      else if (!existsSync(join(unpacked, target))) report(`${field} names ${target}, not in the tarball`);
    }
    if (!existsSync(join(unpacked, "LICENSE"))) report("no LICENSE in the tarball");
    try {
      execFileSync(attw, [packed.filename, "--profile", "esm-only", "--format", "ascii"], { encoding: "utf8", stdio: "pipe" });
    } catch (error) {
      report(`attw --profile esm-only:\n${error.stdout}${error.stderr}`);
    }
    console.log(`${manifest.name}: ${paths.length} paths and attw checked in ${packed.filename.split("/").pop()}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
if (problems.length > 0) {
  console.error(problems.join("\n"));
  process.exit(1);
}
