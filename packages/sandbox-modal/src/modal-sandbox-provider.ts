import { randomInt } from "node:crypto";
import {
  abortedError,
  agentError,
  ErrorCode,
  SANDBOX_SPEC_VERSION,
  type FoundPreparedState,
  type PreparedStateOrigin,
  type SandboxCreateOptions,
  type SandboxProvider,
  type SandboxSession,
  type SandboxSnapshotCapability,
} from "@running-agent/core";
import { ModalClient, type App, type Image, type Sandbox, type Secret } from "modal";
import { modalError } from "./modal-error.js";
import type { ModalPreparedStateCache } from "./modal-prepared-state-cache.js";
import type { ModalClientHandle } from "./modal-sdk-handles.js";
import { ModalSandboxSession } from "./modal-sandbox-session.js";
import {
  checkModalSettings,
  checkNetworkPolicy,
  CREATED_TAG,
  DEFAULT_IMAGE,
  DEFAULT_OPENCODE_PATH,
  MANAGED_TAG,
  networkParameters,
  TASK_TAG,
  type ModalSandboxSettings,
} from "./modal-sandbox-settings.js";

const DEFAULT_APP = "running-agent";
const DEFAULT_TIMEOUT_MS = 3600_000;

/**
 * Sandboxes on Modal through Modal's official JavaScript SDK (`modal`). The factory checks the
 * settings and does no I/O; the client, app and image are made on first use and reused.
 */
export function createModalSandbox(settings: ModalSandboxSettings = {}): ModalSandboxProvider {
  checkModalSettings(settings);
  return new ModalSandboxProvider(settings);
}

/** The provider {@link createModalSandbox} returns. */
export class ModalSandboxProvider implements SandboxProvider {
  readonly specificationVersion = SANDBOX_SPEC_VERSION;
  readonly providerId = "modal";
  readonly opencodeBinary: string;
  /** Modal's tunnels reach the sandbox's network interface, not its loopback: servers listen on every address. */
  readonly listenHostname: string;
  /** Filesystem snapshots: the returned id is a Modal image id, usable as `image: { imageId }`. */
  readonly snapshots: SandboxSnapshotCapability = {
    snapshot: async (session) => {
      if (!(session instanceof ModalSandboxSession)) throw agentError(ErrorCode.INVALID_OPTIONS, "This snapshot capability takes sessions of the Modal provider only.");
      try {
        const image = await (session.modalSandbox as Sandbox).snapshotFilesystem();
        return image.imageId;
      } catch (error) {
        throw modalError(error, ErrorCode.SANDBOX_CREATE_FAILED, "snapshot the sandbox's filesystem");
      }
    },
  };
  /** True with settings.preparedStates: a task on a kept key creates its sandbox from the state's snapshot. */
  readonly startsFromPreparedStates: boolean;
  private client: ModalClient | undefined;
  private app: Promise<App> | undefined;
  private image: Promise<Image> | undefined;

  constructor(private readonly settings: ModalSandboxSettings) {
    this.opencodeBinary = settings.opencodeBinary ?? DEFAULT_OPENCODE_PATH;
    this.listenHostname = settings.listenHostname ?? "0.0.0.0";
    this.startsFromPreparedStates = settings.preparedStates !== undefined;
  }

  async validate(options: { signal?: AbortSignal } = {}): Promise<void> {
    if (options.signal?.aborted) throw abortedError(options.signal);
    await this.resolveApp();
  }

  /** With prepared states: the snapshot of the task's key, else the newest of its lineage, on this provider's image. */
  async findPreparedState(query: { lineage: string; key?: string; signal?: AbortSignal }): Promise<FoundPreparedState | undefined> {
    const cache = this.settings.preparedStates;
    if (!cache) return undefined;
    const baseImage = await abortable(this.resolveImage(), query.signal);
    return cache.findInLineage(query, baseImage.imageId);
  }

  async create(options: SandboxCreateOptions): Promise<SandboxSession> {
    if (!options || typeof options.taskId !== "string" || options.taskId.length === 0) throw agentError(ErrorCode.INVALID_OPTIONS, "create() needs a taskId.");
    if (options.network) checkNetworkPolicy(options.network);
    const signal = options.signal;
    if (signal?.aborted) throw abortedError(signal);
    const client = this.sdkClient();
    const [app, baseImage] = await abortable(Promise.all([this.resolveApp(), this.resolveImage()]), signal);
    const cache = this.settings.preparedStates;
    let image = baseImage;
    let startedFrom: string | undefined;
    if (cache && options.preparedStateKey !== undefined) {
      const snapshotId = await cache.find(options.preparedStateKey, baseImage.imageId);
      if (snapshotId) {
        try {
          image = await abortable(client.images.fromId(snapshotId), signal);
          startedFrom = options.preparedStateKey;
        } catch (error) {
          if (signal?.aborted) throw abortedError(signal);
          // A snapshot Modal no longer has (expired, deleted elsewhere) is forgotten: the task prepares again.
          if (!(error instanceof Error && error.name === "NotFoundError")) throw modalError(error, ErrorCode.SANDBOX_IMAGE_NOT_FOUND, `look up the prepared state ${snapshotId}`);
          await cache.invalidate(options.preparedStateKey);
        }
      }
    }
    let secrets: Secret[] = [];
    try {
      if (options.secrets && Object.keys(options.secrets).length > 0) secrets = [await client.secrets.fromObject(options.secrets)];
    } catch (error) {
      throw modalError(error, ErrorCode.INVALID_OPTIONS, "pass the secrets");
    }
    const workdir = this.settings.workdir ?? "/workspace";
    const scratchDir = this.settings.scratchDir ?? "/tmp/running-agent";
    const ports = this.settings.ports ?? randomPorts(2);
    const timeoutMs = Math.min(options.timeoutMs ?? Infinity, this.settings.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const cpu = options.resources?.cpu ?? this.settings.cpu;
    const memoryMiB = options.resources?.memoryMiB ?? this.settings.memoryMiB;
    if (options.resources?.pids !== undefined) {
      throw agentError(ErrorCode.CAPABILITY_UNSUPPORTED, "Modal sandboxes take no process limit (resources.pids).");
    }
    const tags = {
      ...this.settings.tags,
      ...options.labels,
      [MANAGED_TAG]: "true",
      [TASK_TAG]: options.taskId,
      [CREATED_TAG]: String(Date.now()),
    };
    const creation = client.sandboxes.create(app, image, {
      workdir,
      ...(cpu !== undefined ? { cpu } : {}),
      ...(memoryMiB !== undefined ? { memoryMiB: Math.ceil(memoryMiB) } : {}),
      timeoutMs: wholeSeconds(timeoutMs),
      ...(this.settings.idleTimeoutMs !== undefined ? { idleTimeoutMs: wholeSeconds(this.settings.idleTimeoutMs) } : {}),
      ...networkParameters(options.network ?? this.settings.network),
      ...(options.env && Object.keys(options.env).length > 0 ? { env: options.env } : {}),
      secrets,
      encryptedPorts: ports,
      tags,
    });
    let sandbox: Sandbox;
    try {
      sandbox = await abortable(creation, signal);
    } catch (error) {
      // A create that finishes after an abort must not leave a sandbox behind.
      void creation.then((late) => late.terminate().catch(() => undefined), () => undefined);
      throw signal?.aborted ? abortedError(signal) : modalError(error, ErrorCode.SANDBOX_CREATE_FAILED, "create a sandbox");
    }
    const preparedStates = cache
      ? {
          ...(startedFrom !== undefined ? { startedFrom } : {}),
          restore: async (key: string) => key === startedFrom,
          save: async (key: string, origin?: PreparedStateOrigin) => {
            let snapshot: Image;
            try {
              snapshot = await sandbox.snapshotFilesystem({ ttlMs: cache.snapshotTtlMs });
            } catch (error) {
              throw modalError(error, ErrorCode.SANDBOX_EXEC_FAILED, "snapshot the prepared state");
            }
            await cache.keep(key, { imageId: snapshot.imageId, baseImageId: baseImage.imageId, ...(origin ? { origin: { lineage: origin.lineage, commit: origin.commit } } : {}), remove: () => client.images.delete(snapshot.imageId).catch(() => undefined) });
          },
        }
      : undefined;
    const session = new ModalSandboxSession(sandbox, { workdir, scratchDir, ports, tunnelTimeoutMs: this.settings.tunnelTimeoutMs ?? 50_000 }, preparedStates);
    try {
      const prepared = await abortable(session.exec(["mkdir", "-p", workdir, `${scratchDir}/.exec`], { cwd: "/" }), signal);
      if (prepared.exitCode !== 0) throw agentError(ErrorCode.SANDBOX_CREATE_FAILED, `Could not prepare the sandbox's folders: ${prepared.stderr.trim()}`);
    } catch (error) {
      await session.destroy();
      throw signal?.aborted ? abortedError(signal) : modalError(error, ErrorCode.SANDBOX_CREATE_FAILED, "prepare the sandbox");
    }
    return session;
  }

  async reapOrphans(options: { olderThanMs?: number } = {}): Promise<number> {
    const client = this.sdkClient();
    const app = await this.resolveApp();
    let removed = 0;
    try {
      for await (const sandbox of client.sandboxes.list({ appId: app.appId, tags: { [MANAGED_TAG]: "true" } })) {
        if (options.olderThanMs !== undefined) {
          const tags = await sandbox.getTags();
          const createdAt = Number(tags[CREATED_TAG]);
          if (Number.isFinite(createdAt) && Date.now() - createdAt < options.olderThanMs) continue;
        }
        await sandbox.terminate();
        sandbox.detach();
        removed += 1;
      }
    } catch (error) {
      throw modalError(error, ErrorCode.SANDBOX_UNAVAILABLE, "list and terminate leftover sandboxes");
    }
    return removed;
  }

  /** The SDK client, made once: cast it to modal's `ModalClient` for the SDK's own calls. */
  modalClient(): ModalClientHandle {
    return this.sdkClient();
  }

  private sdkClient(): ModalClient {
    if (this.settings.client) return this.settings.client as ModalClient;
    if (this.client) return this.client;
    // Explicit tokens win; otherwise the SDK reads MODAL_TOKEN_ID / MODAL_TOKEN_SECRET or the profile.
    const tokens = this.settings.tokenId !== undefined ? { tokenId: this.settings.tokenId, tokenSecret: this.settings.tokenSecret } : {};
    // The SDK takes its server address only from MODAL_SERVER_URL (or the profile), read while the
    // client is constructed; the constructor is synchronous, so the change is never seen elsewhere.
    const previous = process.env.MODAL_SERVER_URL;
    if (this.settings.serverUrl) process.env.MODAL_SERVER_URL = this.settings.serverUrl;
    let client: ModalClient;
    try {
      client = new ModalClient({ ...tokens, ...(this.settings.environment ? { environment: this.settings.environment } : {}) });
    } catch (error) {
      throw modalError(error, ErrorCode.INVALID_OPTIONS, "set up the Modal client");
    } finally {
      if (this.settings.serverUrl) {
        if (previous === undefined) delete process.env.MODAL_SERVER_URL;
        else process.env.MODAL_SERVER_URL = previous;
      }
    }
    const profile = client.profile;
    if (!(profile.tokenId && profile.tokenSecret) && !profile.oauthRefreshToken) {
      throw agentError(ErrorCode.AUTH_FAILED, "No Modal token: set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET, pass tokenId and tokenSecret to createModalSandbox, or run `modal token new`.", {
        details: { reason: "missing" },
      });
    }
    this.client = client;
    return this.client;
  }

  private resolveApp(): Promise<App> {
    const client = this.sdkClient();
    const setting = this.settings.app ?? DEFAULT_APP;
    const name = typeof setting === "string" ? setting : setting.name;
    const createIfMissing = typeof setting === "string" ? true : setting.createIfMissing !== false;
    this.app ??= client.apps.fromName(name, { createIfMissing }).catch((error: unknown) => {
      this.app = undefined;
      if (error instanceof Error && error.name === "NotFoundError") {
        throw agentError(ErrorCode.SANDBOX_UNAVAILABLE, `The Modal app ${JSON.stringify(name)} does not exist; deploy it or allow createIfMissing.`, {
          cause: error,
          details: { reason: "app-not-found", app: name },
        });
      }
      throw modalError(error, ErrorCode.SANDBOX_UNAVAILABLE, `look up the app ${JSON.stringify(name)}`);
    });
    return this.app;
  }

  /** The image, built (or looked up) once per provider and then reused by id. */
  private resolveImage(): Promise<Image> {
    this.image ??= (async () => {
      const client = this.sdkClient();
      const source = this.settings.image ?? DEFAULT_IMAGE;
      if ("imageId" in source) {
        try {
          return await client.images.fromId(source.imageId);
        } catch (error) {
          if (error instanceof Error && error.name === "NotFoundError") {
            throw agentError(ErrorCode.SANDBOX_IMAGE_NOT_FOUND, `Modal has no image ${source.imageId}.`, { cause: error, details: { imageId: source.imageId } });
          }
          throw modalError(error, ErrorCode.SANDBOX_IMAGE_NOT_FOUND, `look up the image ${source.imageId}`);
        }
      }
      const app = await this.resolveApp();
      const image = client.images.fromRegistry(source.registryTag).dockerfileCommands([...(source.dockerfileCommands ?? [])]);
      try {
        return await image.build(app);
      } catch (error) {
        throw modalError(error, ErrorCode.SANDBOX_IMAGE_BUILD_FAILED, `build the image from ${source.registryTag}`);
      }
    })().catch((error: unknown) => {
      this.image = undefined;
      throw error;
    });
    return this.image;
  }
}

function wholeSeconds(milliseconds: number): number {
  return Math.max(1, Math.ceil(milliseconds / 1000)) * 1000;
}

/** Distinct random high ports: each Modal sandbox has its own network, so these only matter where sandboxes share one. */
function randomPorts(count: number): number[] {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(randomInt(20_000, 60_000));
  return [...ports];
}

async function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) throw abortedError(signal);
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        onAbort = () => reject(abortedError(signal));
        signal.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
  } finally {
    if (onAbort) signal.removeEventListener("abort", onAbort);
  }
}
