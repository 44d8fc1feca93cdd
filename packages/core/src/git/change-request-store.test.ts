import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ChangeRequestStore, type LocalChangeRequest } from "./change-request-store.js";

let gitDir: string;
beforeEach(async () => {
  gitDir = await mkdtemp(join(tmpdir(), "running-agent-store-test-"));
});
afterEach(async () => {
  await rm(gitDir, { recursive: true, force: true });
});

const record = (number: number): LocalChangeRequest => ({
  number,
  url: `local:///repo/change-requests/${number}`,
  state: "open",
  head: `head-${number}`,
  base: "main",
  headCommit: "0".repeat(40),
  title: `Title ${number}`,
  body: "",
  draft: false,
  labels: [],
  reviewers: [],
  assignees: [],
  createdAt: new Date(0).toISOString(),
  updatedAt: new Date(0).toISOString(),
});

const folder = () => join(gitDir, "running-agent");
const lock = () => join(folder(), "change-requests.json.lock");

describe("ChangeRequestStore", () => {
  it("starts empty and writes a versioned file, leaving no temp or lock file", async () => {
    const store = new ChangeRequestStore(gitDir);
    expect(await store.list()).toEqual([]);
    await store.update((records) => records.push(record(1)));
    expect(JSON.parse(await readFile(join(folder(), "change-requests.json"), "utf8"))).toEqual({ version: 1, changeRequests: [record(1)] });
    expect(await readdir(folder())).toEqual(["change-requests.json"]);
  });

  it("waits for a lock held by another process, then proceeds once it is released", async () => {
    await mkdir(folder(), { recursive: true });
    await writeFile(lock(), "");
    let done = false;
    const pending = new ChangeRequestStore(gitDir).update((records) => records.push(record(1))).then(() => {
      done = true;
    });
    // The update cannot have gone through while the lock file exists.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(done).toBe(false);
    expect(await new ChangeRequestStore(gitDir).list()).toEqual([]);
    await rm(lock());
    await pending;
    expect(await new ChangeRequestStore(gitDir).list()).toEqual([record(1)]);
  });

  it("takes over a lock left behind by a crashed process", async () => {
    await mkdir(folder(), { recursive: true });
    await writeFile(lock(), "");
    const longAgo = new Date(Date.now() - 10 * 60_000);
    await utimes(lock(), longAgo, longAgo);
    await new ChangeRequestStore(gitDir).update((records) => records.push(record(1)));
    expect(await new ChangeRequestStore(gitDir).list()).toEqual([record(1)]);
    expect(await readdir(folder())).toEqual(["change-requests.json"]);
  });

  it("refuses a corrupt file with a typed error", async () => {
    await mkdir(folder(), { recursive: true });
    await writeFile(join(folder(), "change-requests.json"), "{ not json");
    await expect(new ChangeRequestStore(gitDir).list()).rejects.toMatchObject({ code: "GIT_HOST_ERROR" });
  });

  it("refuses a file of an unknown version instead of overwriting it", async () => {
    await mkdir(folder(), { recursive: true });
    await writeFile(join(folder(), "change-requests.json"), JSON.stringify({ version: 2, items: [] }));
    await expect(new ChangeRequestStore(gitDir).update((records) => records.push(record(1)))).rejects.toMatchObject({ code: "GIT_HOST_ERROR" });
    expect(JSON.parse(await readFile(join(folder(), "change-requests.json"), "utf8"))).toEqual({ version: 2, items: [] });
  });
});
