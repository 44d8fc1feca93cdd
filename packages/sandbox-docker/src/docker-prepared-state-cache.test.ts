import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createDockerPreparedStateCache, PREPARED_CACHE_LABEL, PREPARED_STATE_LABEL } from "./docker-prepared-state-cache.js";
import { docker, expectNoContainers, scopedProvider } from "./test-engine.js";

const SECRET = "prepared-secret-0123456789";
const [KEY_A, KEY_B] = ["a", "b"].map((letter) => letter.repeat(64)) as [string, string];

/** Images of one cache, dangling ones included. */
async function imagesOf(name: string) {
  return docker.listImages({ all: true, filters: { label: [`${PREPARED_CACHE_LABEL}=${name}`] } });
}

const read = async (session: { exec(command: string[]): Promise<{ stdout: string }> }, path: string) =>
  (await session.exec(["sh", "-c", 'cat "$0" 2>/dev/null || echo missing', path])).stdout.trim();

describe("prepared states of the Docker sandbox (committed images)", () => {
  it("a session on a kept key starts from its image (files in and outside the workdir), another key or a stale state does not, no secret is committed, and invalidate leaves no image", async () => {
    const name = `test-${randomUUID().slice(0, 8)}`;
    const cache = createDockerPreparedStateCache({ name });
    const { provider, run } = scopedProvider({ preparedStates: cache });
    expect(provider.startsFromPreparedStates).toBe(true);
    const volumes: string[] = [];
    try {
      {
        await using first = await provider.create({ taskId: "prepare", preparedStateKey: KEY_A, secrets: { MODEL_KEY: SECRET } });
        expect(first.preparedStates?.startedFrom).toBeUndefined();
        expect(await first.preparedStates?.restore(KEY_A)).toBe(false);
        await first.exec(["sh", "-c", "echo placed > /workspace/marker && mkdir -p /opt/deps && echo installed > /opt/deps/tool && echo opencode-state > \"$0\"/state", first.scratchDir]);
        await first.preparedStates!.save(KEY_A);
        // Saved again (a refresh): the older image goes, none is left dangling.
        await first.preparedStates!.save(KEY_A);
      }
      const kept = await imagesOf(name);
      expect(kept).toHaveLength(1);
      expect(kept[0]?.Labels?.[PREPARED_STATE_LABEL]).toBe(KEY_A);
      const image = docker.getImage(kept[0]!.Id);
      expect(JSON.stringify([await image.inspect(), await image.history()])).not.toContain(SECRET);
      expect(await cache.keys()).toEqual([KEY_A]);

      {
        await using second = await provider.create({ taskId: "from-state", preparedStateKey: KEY_A });
        expect(second.preparedStates?.startedFrom).toBe(KEY_A);
        expect(await second.preparedStates?.restore(KEY_A)).toBe(true);
        expect([await read(second, "/workspace/marker"), await read(second, "/opt/deps/tool"), await read(second, `${second.scratchDir}/state`)]).toEqual(["placed", "installed", "missing"]);
        const container = await docker.getContainer(second.id).inspect();
        expect(container.Image).toBe(kept[0]!.Id);
        volumes.push(...container.Mounts.map((mount) => mount.Name!));
      }
      // The scratch and control folders were anonymous volumes of the container: gone with it.
      expect(volumes).toHaveLength(2);
      for (const volume of volumes) await expect(docker.getVolume(volume).inspect()).rejects.toMatchObject({ statusCode: 404 });
      {
        await using other = await provider.create({ taskId: "other-key", preparedStateKey: KEY_B });
        expect(other.preparedStates?.startedFrom).toBeUndefined();
        expect(await read(other, "/workspace/marker")).toBe("missing");
      }
      {
        // The same cache with a short life: the state is stale, so it is removed rather than used.
        const { provider: strict } = scopedProvider({ preparedStates: createDockerPreparedStateCache({ name, maxAgeMs: 1 }) });
        await new Promise((resolve) => setTimeout(resolve, 5));
        await using stale = await strict.create({ taskId: "stale", preparedStateKey: KEY_A });
        expect(stale.preparedStates?.startedFrom).toBeUndefined();
        expect(await read(stale, "/workspace/marker")).toBe("missing");
        expect(await imagesOf(name)).toEqual([]);
      }
      {
        await using again = await provider.create({ taskId: "again", preparedStateKey: KEY_B });
        await again.preparedStates!.save(KEY_B);
      }
      expect(await cache.keys()).toEqual([KEY_B]);
      await cache.invalidate();
      expect(await imagesOf(name)).toEqual([]);
      await expectNoContainers(run);
    } finally {
      await cache.invalidate().catch(() => undefined);
    }
  });

  it("findPreparedState gives the task's key's image when kept, else the newest of its lineage; never one of another lineage or without an origin", async () => {
    const name = `test-${randomUUID().slice(0, 8)}`;
    const cache = createDockerPreparedStateCache({ name });
    const { provider, run } = scopedProvider({ preparedStates: cache });
    const lineage = "1".repeat(64);
    const [older, newer, bare] = ["c", "d", "e"].map((letter) => letter.repeat(64)) as [string, string, string];
    try {
      {
        await using session = await provider.create({ taskId: "lineage" });
        await session.preparedStates!.save(older, { lineage, commit: "a".repeat(40) });
        await session.preparedStates!.save(newer, { lineage, commit: "b".repeat(40) });
        await session.preparedStates!.save(bare);
      }
      expect(await provider.findPreparedState({ lineage })).toEqual({ key: newer, commit: "b".repeat(40) });
      expect(await provider.findPreparedState({ lineage, key: older })).toEqual({ key: older, commit: "a".repeat(40) });
      expect(await provider.findPreparedState({ lineage, key: bare })).toEqual({ key: newer, commit: "b".repeat(40) });
      expect(await provider.findPreparedState({ lineage: "2".repeat(64) })).toBeUndefined();
      await cache.invalidate(newer);
      expect(await provider.findPreparedState({ lineage })).toEqual({ key: older, commit: "a".repeat(40) });
      // A provider without a cache keeps no states to find.
      expect(await scopedProvider().provider.findPreparedState({ lineage })).toBeUndefined();
    } finally {
      await cache.close();
    }
    expect(await imagesOf(name)).toEqual([]);
    await expectNoContainers(run);
  });

  it("refuses bad settings and keys before any I/O", async () => {
    expect(() => createDockerPreparedStateCache({ name: "Bad Name" })).toThrow(/name/);
    expect(() => createDockerPreparedStateCache({ maxEntries: 0 })).toThrow(/maxEntries/);
    await expect(createDockerPreparedStateCache().invalidate("../x")).rejects.toThrow(/hex digest/);
  });
});
