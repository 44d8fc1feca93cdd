import { agentError, ErrorCode, type FoundPreparedState, type PreparedStateOrigin } from "@running-agent/core";
import type Dockerode from "dockerode";
import { resolveDockerClient, type DockerConnection } from "./docker-client.js";
import { engineMessage, engineStatus, isGone } from "./engine-error.js";

/** Label with the state's key (the core's digest of repository, commit and setup commands). */
export const PREPARED_STATE_LABEL = "running-agent.prepared-state";
/** Label with the name of the cache that made the image. */
export const PREPARED_CACHE_LABEL = "running-agent.prepared-cache";
/** Label with the id of the image the state was prepared on: a rebuilt base image is another state. */
export const PREPARED_BASE_LABEL = "running-agent.prepared-base";
/** Label with when the state was made (ms since the epoch). */
export const PREPARED_AT_LABEL = "running-agent.prepared-at";
/** Label with the state's lineage (the core's digest of repository, remote and setup commands), for a task on a moved base. */
export const PREPARED_LINEAGE_LABEL = "running-agent.prepared-lineage";
/** Label with the base commit the state holds. */
export const PREPARED_COMMIT_LABEL = "running-agent.prepared-commit";
/** The repository of the committed images; each is tagged `<cache name>-<key>`. */
export const PREPARED_IMAGE_REPOSITORY = "running-agent/prepared";

/** Settings of {@link createDockerPreparedStateCache}. */
export interface DockerPreparedStateCacheOptions {
  /** Names this cache's images (tag and label); caches of other names never see each other's states. Default `"default"`. */
  name?: string;
  /** How many states (images) are kept; the oldest go first. Default 8. */
  maxEntries?: number;
  /** A state older than this is not used: the next task on its key runs the setup again and replaces it. Default 6 hours. */
  maxAgeMs?: number;
  /** The Engine, for {@link DockerPreparedStateCache.keys}, `invalidate` and `prune`: the provider's own. Default: dockerode's defaults. */
  docker?: DockerConnection;
}

/** The image of one kept state. */
interface KeptImage {
  id: string;
  key: string;
  base: string;
  preparedAt: number;
  /** The state's lineage and commit, from the labels set at commit (absent on an image committed without them). */
  lineage?: string;
  commit?: string;
}

/** What the committed image takes from the image it was prepared on. */
export interface PreparedBaseImage {
  /** The base image's id (`sha256:…`): a kept state is used only on top of the same base. */
  id: string;
  /** The base image's environment (`KEY=value` lines), set again on the committed image. */
  env: string[];
}

const NAME = /^[a-z0-9][a-z0-9_.-]{0,39}$/;
const KEY = /^[a-f0-9]{16,128}$/;
/** Lineages and commits are hex digests: safe in a label and in a label filter. */
const LABEL_VALUE = /^[a-f0-9]{16,128}$/;
const DEFAULT_MAX_AGE_MS = 6 * 60 * 60 * 1000;

/**
 * Prepared states of the Docker sandbox: a task's container as it is after the clone and the setup
 * commands, committed to an image (`running-agent/prepared:<name>-<key>`, labelled with the key), from
 * which later tasks on the same key start their container. Give it to `createDockerSandbox({ preparedStates })`.
 * Synchronous and free of I/O until used.
 */
export function createDockerPreparedStateCache(options: DockerPreparedStateCacheOptions = {}): DockerPreparedStateCache {
  return new DockerPreparedStateCache(options);
}

/** Made by {@link createDockerPreparedStateCache}. */
export class DockerPreparedStateCache implements AsyncDisposable {
  /** The cache's name, on its images' tags and labels. */
  readonly name: string;
  /** How many keys keep an image at most (the option, default 8). */
  readonly maxEntries: number;
  /** Age in ms after which a state is no longer used (the option, default 6 hours). */
  readonly maxAgeMs: number;
  private readonly connection: DockerConnection | undefined;
  private client: Dockerode | undefined;

  constructor(options: DockerPreparedStateCacheOptions) {
    const name = options.name ?? "default";
    const maxEntries = options.maxEntries ?? 8;
    const maxAgeMs = options.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
    if (typeof name !== "string" || !NAME.test(name)) throw agentError(ErrorCode.INVALID_OPTIONS, `The prepared-state cache's name must be 1 to 40 of a-z, 0-9, "_", "." and "-" (starting with a letter or digit), not ${JSON.stringify(name)}.`);
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw agentError(ErrorCode.INVALID_OPTIONS, `maxEntries must be a positive integer, not ${String(options.maxEntries)}.`);
    if (typeof maxAgeMs !== "number" || !(maxAgeMs > 0)) throw agentError(ErrorCode.INVALID_OPTIONS, `maxAgeMs must be a positive number of milliseconds, not ${String(options.maxAgeMs)}.`);
    this.name = name;
    this.maxEntries = maxEntries;
    this.maxAgeMs = maxAgeMs;
    this.connection = options.docker;
  }

  private get docker(): Dockerode {
    this.client ??= resolveDockerClient(this.connection);
    return this.client;
  }

  /** The keys held, newest first (stale ones included until pruned). */
  async keys(): Promise<string[]> {
    return [...new Set((await this.list(this.docker)).map((image) => image.key))];
  }

  /** Removes the images of `key`, or every image of this cache. An image a running container still uses stays until {@link prune}. */
  async invalidate(key?: string): Promise<void> {
    if (key !== undefined) checkKey(key);
    for (const image of await this.list(this.docker)) if (key === undefined || image.key === key) await removeImage(this.docker, image.id);
  }

  /** Closes the cache for good: removes every image of it (as `invalidate()`). Also `await using`. */
  async close(): Promise<void> {
    await this.invalidate();
  }

  /** Same as {@link close}, for `await using cache = ...`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Removes what is no longer used: states past `maxAgeMs`, older images of a key, and the oldest keys beyond `maxEntries`. Returns how many images went. */
  async prune(): Promise<number> {
    return this.pruneWith(this.docker);
  }

  /**
   * The image to start a task on `key` from, prepared on `baseImageId` and not older than `maxAgeMs`;
   * a stale one is removed. Used by the provider.
   * @internal
   */
  async find(docker: Dockerode, key: string, baseImageId: string): Promise<string | undefined> {
    checkKey(key);
    const found = (await this.list(docker, key)).find((image) => image.base === baseImageId);
    if (!found) return undefined;
    if (Date.now() - found.preparedAt <= this.maxAgeMs) return found.id;
    await removeImage(docker, found.id);
    return undefined;
  }

  /**
   * The state to start a task of `lineage` from, prepared on `baseImageId` and fresh: `key`'s own image
   * when there is one, else the newest of the lineage (from the labels the host set at commit). Used by
   * the provider's `findPreparedState`.
   * @internal
   */
  async findInLineage(docker: Dockerode, query: { lineage: string; key?: string }, baseImageId: string): Promise<FoundPreparedState | undefined> {
    if (!LABEL_VALUE.test(query.lineage)) return undefined;
    const images = await this.list(docker, undefined, query.lineage);
    const usable = images.filter((image) => image.base === baseImageId && image.commit !== undefined && Date.now() - image.preparedAt <= this.maxAgeMs);
    const found = usable.find((image) => image.key === query.key) ?? usable[0];
    return found && { key: found.key, commit: found.commit! };
  }

  /**
   * Commits the container to this key's image, then drops older images of the key and what is
   * beyond `maxEntries`. The image keeps the base image's environment; `origin` goes on its labels.
   * @internal
   */
  async commit(docker: Dockerode, container: Dockerode.Container, key: string, base: PreparedBaseImage, origin?: PreparedStateOrigin): Promise<string> {
    checkKey(key);
    const originLabels = origin && LABEL_VALUE.test(origin.lineage) && LABEL_VALUE.test(origin.commit) ? { [PREPARED_LINEAGE_LABEL]: origin.lineage, [PREPARED_COMMIT_LABEL]: origin.commit } : {};
    // The provider sets no task environment on the container (see its Env); the image keeps the base image's.
    const config = {
      Env: base.env,
      Labels: { [PREPARED_STATE_LABEL]: key, [PREPARED_CACHE_LABEL]: this.name, [PREPARED_BASE_LABEL]: base.id, [PREPARED_AT_LABEL]: String(Date.now()), ...originLabels },
    };
    let imageId: string;
    try {
      const committed = (await container.commit({ _query: { container: container.id, repo: PREPARED_IMAGE_REPOSITORY, tag: `${this.name}-${key.slice(0, 64)}`, pause: true }, _body: config })) as { Id: string };
      imageId = committed.Id;
    } catch (error) {
      throw agentError(ErrorCode.SANDBOX_EXEC_FAILED, `Could not commit the prepared state: ${engineMessage(error)}`, { cause: error });
    }
    for (const older of await this.list(docker, key)) if (older.id !== imageId) await removeImage(docker, older.id);
    await this.pruneWith(docker);
    return imageId;
  }

  private async pruneWith(docker: Dockerode): Promise<number> {
    const seen = new Set<string>();
    let removed = 0;
    for (const image of await this.list(docker)) {
      const stale = seen.has(image.key) || Date.now() - image.preparedAt > this.maxAgeMs || (!seen.has(image.key) && seen.size >= this.maxEntries);
      if (stale) {
        if (await removeImage(docker, image.id)) removed++;
        continue;
      }
      seen.add(image.key);
    }
    return removed;
  }

  /** This cache's images (of one key, of one lineage), newest first. */
  private async list(docker: Dockerode, key?: string, lineage?: string): Promise<KeptImage[]> {
    let images: Dockerode.ImageInfo[];
    try {
      const labels = [`${PREPARED_CACHE_LABEL}=${this.name}`, ...(key ? [`${PREPARED_STATE_LABEL}=${key}`] : []), ...(lineage ? [`${PREPARED_LINEAGE_LABEL}=${lineage}`] : [])];
      images = await docker.listImages({ filters: { label: labels } });
    } catch (error) {
      throw agentError(ErrorCode.SANDBOX_UNAVAILABLE, `Could not list the prepared-state images: ${engineMessage(error)}`, { cause: error });
    }
    return images
      .map((image) => ({
        id: image.Id,
        key: image.Labels?.[PREPARED_STATE_LABEL] ?? "",
        base: image.Labels?.[PREPARED_BASE_LABEL] ?? "",
        preparedAt: Number(image.Labels?.[PREPARED_AT_LABEL]) || image.Created * 1000,
        ...(image.Labels?.[PREPARED_LINEAGE_LABEL] ? { lineage: image.Labels[PREPARED_LINEAGE_LABEL] } : {}),
        ...(image.Labels?.[PREPARED_COMMIT_LABEL] ? { commit: image.Labels[PREPARED_COMMIT_LABEL] } : {}),
      }))
      .filter((image) => KEY.test(image.key))
      .sort((left, right) => right.preparedAt - left.preparedAt);
  }
}

function checkKey(key: string): void {
  if (typeof key !== "string" || !KEY.test(key)) throw agentError(ErrorCode.INVALID_OPTIONS, `A prepared-state key is a lowercase hex digest, not ${JSON.stringify(key)}.`);
}

/** Removes an image; false when a container still uses it (409), true when it is gone. */
async function removeImage(docker: Dockerode, id: string): Promise<boolean> {
  try {
    await docker.getImage(id).remove();
    return true;
  } catch (error) {
    if (isGone(error)) return true;
    if (engineStatus(error) === 409) return false;
    throw agentError(ErrorCode.SANDBOX_EXEC_FAILED, `Could not remove the prepared-state image ${id.slice(7, 19)}: ${engineMessage(error)}`, { cause: error });
  }
}
