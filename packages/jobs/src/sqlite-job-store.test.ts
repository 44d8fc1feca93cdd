import { spawn } from "node:child_process";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import { JobErrorCode } from "./job-error.js";
import type { JobStore } from "./job-store.js";
import { openSqliteJobStore } from "./sqlite-job-store.js";
import { testJobStore } from "./testing/job-store-conformance.js";

const folders: string[] = [];
const paths = new WeakMap<JobStore, string>();
afterAll(async () => {
  for (const folder of folders) await rm(folder, { recursive: true, force: true });
});

async function newPath(): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), "jobs-sqlite-"));
  folders.push(folder);
  return join(folder, "jobs.db");
}

testJobStore("sqlite", {
  async open() {
    const path = await newPath();
    const store = openSqliteJobStore({ path });
    paths.set(store, path);
    return store;
  },
  async rawBytes(store) {
    const path = paths.get(store)!;
    const folder = join(path, "..");
    const files = (await readdir(folder)).filter((name) => name.startsWith("jobs.db"));
    return Buffer.concat(await Promise.all(files.map((name) => readFile(join(folder, name)))));
  },
});

/** Runs a second Node process that opens the store on the same file and prints what happened. */
function openInAnotherProcess(path: string): Promise<{ code: number | null; output: string }> {
  const script = `
    import { openSqliteJobStore } from "./src/sqlite-job-store.ts";
    try { openSqliteJobStore({ path: ${JSON.stringify(path)} }); console.log("opened"); }
    catch (error) { console.log(JSON.stringify({ code: error.code, message: error.message })); process.exitCode = 3; }
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", "--input-type=module", "-e", script], { cwd: join(import.meta.dirname, ".."), stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, output }));
  });
}

describe("the embedded store's lock", () => {
  it("refuses a second process on the same file with STORE_LOCKED before touching a row, and lets it in once the first has closed", async () => {
    const path = await newPath();
    const store = openSqliteJobStore({ path });
    const { job } = await store.submit({ spec: { repo: "/r", task: "Keep me queued" } });
    await store.claim("worker-a", 0, 1000);

    const refused = await openInAnotherProcess(path);
    expect(refused.code).toBe(3);
    const error = JSON.parse(refused.output.trim().split("\n").at(-1)!) as { code: string; message: string };
    expect(error.code).toBe(JobErrorCode.STORE_LOCKED);
    expect(error.message).toContain("in use by another process");
    // Nothing changed: the job is as the first process left it.
    expect(await store.get(job.id)).toMatchObject({ status: "queued", revision: job.revision });
    expect(() => openSqliteJobStore({ path })).toThrow(expect.objectContaining({ code: JobErrorCode.STORE_LOCKED }));

    await store.close();
    const later = await openInAnotherProcess(path);
    expect(later.output).toContain("opened");
    const reader = new Database(path, { readonly: true });
    expect(reader.prepare("SELECT status FROM agent_jobs WHERE id = ?").get(job.id)).toEqual({ status: "queued" });
    reader.close();
  });

  it("keeps secrets in memory only: a new process on the file fails the job with SECRET_LOST", async () => {
    const path = await newPath();
    const first = openSqliteJobStore({ path });
    const { job } = await first.submit({ spec: { repo: "/r", task: "Token job" }, secrets: { gitToken: "ghp_memoryOnlyToken1234" } });
    await first.close();
    const second = openSqliteJobStore({ path });
    const [claimed] = await second.claim("worker-b", 1, 1000);
    expect(claimed!.job.id).toBe(job.id);
    expect(claimed!.secrets).toMatchObject({ code: JobErrorCode.SECRET_LOST });
    await second.close();
  });
});
