import { createHash, randomBytes } from "node:crypto";
import { createServer as createTcpServer, type Server as TcpServer } from "node:net";
import type { Duplex } from "node:stream";
import { cp, mkdir, mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createServer, ServerError, Status, type CallContext, type Server } from "nice-grpc";
import { CommandRouterTokens } from "./command-router-token.js";
import { LocalTask, type LocalExec } from "./local-task.js";
import { definitionWithMethods, loadModalProtocol } from "./modal-protocol.js";

/** A failure the local server can be told to produce, for tests of error paths. */
export type ModalServerFailure =
  /** Every token is rejected (`AuthTokenGet` answers UNAUTHENTICATED). */
  | {
      /** Which failure: every token rejected. */
      kind: "invalid-token";
    }
  /** The next image builds fail with this log. */
  | {
      /** Which failure: image builds fail. */
      kind: "image-build";
      /** The build log the failed build streams back, which the SDK puts in its error. */
      log: string;
    }
  /** Sandbox creation answers RESOURCE_EXHAUSTED, as Modal does when a workspace is over its limits. */
  | {
      /** Which failure: sandbox creation over quota. */
      kind: "quota";
      /** The gRPC status message sent back; a generic over-limit message when absent. */
      message?: string;
    }
  /** Tunnels are never reported: the create response has none and `SandboxGetTunnelsV2` times out. */
  | {
      /** Which failure: tunnels never open. */
      kind: "tunnel-never-opens";
    };

/** What the local server knows about one sandbox, for tests. */
export interface LocalSandboxRecord {
  /** The sandbox id the server handed out (`sb-…`), as the SDK's `Sandbox.sandboxId`. */
  sandboxId: string;
  /** The id of the task (container) that runs the sandbox, which the command router addresses. */
  taskId: string;
  /** The id of the app the sandbox was created in. */
  appId: string;
  /** The id of the image the sandbox started from (a built image or a snapshot). */
  imageId: string;
  /** The tags set on the sandbox (such as `running-agent.managed`), as `reapOrphans` looks them up. */
  tags: Record<string, string>;
  /** The request's definition: resources, timeouts, network access, ports, as the SDK sent them. */
  definition: Record<string, unknown>;
  /** Names of the environment variables the sandbox got from secrets (never their values). */
  secretNames: string[];
  /** Every command started in the sandbox (argument vectors; environment values are never recorded). */
  commands: string[][];
  /** Null while running; the result once it has ended. */
  result: {
    /** Modal's generic status: 1 success, 2 failure, 3 terminated, 4 timeout. */
    status: number;
    /** The exit code of the sandbox's main process (124 on timeout, 137 when terminated or killed). */
    exitcode: number;
    /** Why it ended, as Modal words it (timed out, terminated, worker lost); for a main process that exited, its trimmed stderr. */
    exception: string;
  } | null;
}

/** An image the local server "built": the Dockerfile commands are recorded, not run. */
export interface LocalImageRecord {
  /** The image id (`im-…`), a hash of the commands and base images, so the same request gets the same id. */
  imageId: string;
  /** The Dockerfile lines of the build request, in order (recorded, not run). */
  dockerfileCommands: string[];
  /** Ids of the images this one was built on (empty for one built from a registry tag). */
  baseImageIds: string[];
  /** Set for filesystem snapshots. */
  snapshotOf?: string;
  /** A snapshot's time to live, as the SDK asked for it (not enforced here). */
  ttlSeconds?: number;
}

/** Options for {@link startModalServer}. */
export interface ModalServerOptions {
  /** The token pair the server accepts; generated when absent. */
  tokenId?: string;
  /** The secret of the pair; generated (`as-…`) when absent. */
  tokenSecret?: string;
  /** The OpenCode binary bound into every sandbox at {@link ModalServerOptions.opencodePath}; found in the `opencode-ai` package when absent. */
  opencodeBinary?: string;
  /** Where sandboxes see the OpenCode binary. Default `/usr/local/bin/opencode`, where the default image puts it. */
  opencodePath?: string;
}

/** The running local Modal-protocol server. */
export interface ModalServer extends AsyncDisposable {
  /** The control plane's address, for `MODAL_SERVER_URL` (a loopback URL, which the SDK treats as a development server). */
  readonly url: string;
  /** The task command router's address, as handed to the SDK (an `https:` URL spoken in plaintext, as the SDK does for loopback servers). */
  readonly commandRouterUrl: string;
  /** The token id the server accepts (`MODAL_TOKEN_ID` / the `tokenId` setting). */
  readonly tokenId: string;
  /** The token secret the server accepts (`MODAL_TOKEN_SECRET` / the `tokenSecret` setting). */
  readonly tokenSecret: string;
  /** The `modal` SDK version whose generated definitions the server answers with. */
  readonly sdkVersion: string;
  /** Every gRPC method called, in order, as `Service/Method`. */
  readonly calls: string[];
  /** Sandboxes still running. */
  liveSandboxes(): LocalSandboxRecord[];
  /** Every sandbox ever created. */
  sandboxes(): LocalSandboxRecord[];
  /** Every image built or snapshotted. */
  images(): LocalImageRecord[];
  /** Creates a deployed app (for lookups without `createIfMissing`). */
  createApp(name: string, environment?: string): string;
  /** Makes the server fail in the given way from now on, until {@link clearFailures}. */
  injectFailure(failure: ModalServerFailure): void;
  /** Removes every injected failure: the server answers normally again. */
  clearFailures(): void;
  /** Kills a sandbox's processes as if its machine died. */
  killSandbox(sandboxId: string, exception?: string): Promise<void>;
  /** Terminates every sandbox, stops both gRPC servers and removes the server's folders. */
  close(): Promise<void>;
}

const GENERIC_STATUS = { SUCCESS: 1, FAILURE: 2, TERMINATED: 3, TIMEOUT: 4 } as const;
const IMAGE_BUILDER_VERSION = "2025.06";

/** The control-plane methods the server answers; every other method of the service is UNIMPLEMENTED. */
export const IMPLEMENTED_CONTROL_PLANE_METHODS = [
  "authTokenGet",
  "environmentGetOrCreate",
  "appGetOrCreate",
  "secretGetOrCreate",
  "imageGetOrCreate",
  "imageJoinStreaming",
  "imageFromId",
  "imageDelete",
  "sandboxCreateV2",
  "sandboxGetTaskIdV2",
  "sandboxGetCommandRouterAccess",
  "sandboxWaitV2",
  "sandboxTerminateV2",
  "sandboxListV2",
  "sandboxGetTunnelsV2",
  "sandboxTagsGetV2",
] as const;

/** The task command router methods the server answers. */
export const IMPLEMENTED_COMMAND_ROUTER_METHODS = [
  "taskExecStart",
  "taskExecStdioRead",
  "taskExecStdinWrite",
  "taskExecStdinStatus",
  "taskExecWait",
  "taskExecPoll",
  "taskSnapshotFilesystem",
] as const;

interface SandboxState {
  record: LocalSandboxRecord;
  environmentName: string;
  createdAt: number;
  task: LocalTask;
  execs: Map<string, LocalExec>;
  tunnels: Array<{ containerPort: number; port: number; server: TcpServer; sockets: Set<Duplex> }>;
  tunnelsHidden: boolean;
  ended: Promise<void>;
  timeoutTimer?: NodeJS.Timeout;
}

/**
 * Starts a gRPC server on 127.0.0.1 that answers the calls the official `modal` SDK makes for
 * sandboxes, with real processes under bubblewrap behind them, plus the task command router the SDK
 * uses for exec. Service, method and field definitions are the SDK's own generated ones.
 *
 * The "image" of every sandbox is the host system, read-only, with a writable root of the sandbox's
 * own: Dockerfile commands are recorded, not run, and the OpenCode binary is bound in at the path
 * the default image installs it to. Sandboxes share the host's network unless created with
 * `blockNetwork`, so a tunnel is a loopback proxy to the port inside.
 */
export async function startModalServer(options: ModalServerOptions = {}): Promise<ModalServer> {
  const protocol = loadModalProtocol();
  const tokenId = options.tokenId ?? `ak-${randomBytes(12).toString("hex")}`;
  const tokenSecret = options.tokenSecret ?? `as-${randomBytes(16).toString("hex")}`;
  const opencodeBinary = options.opencodeBinary ?? findOpencodeBinary();
  const opencodePath = options.opencodePath ?? "/usr/local/bin/opencode";
  const baseDirectory = await mkdtemp(join(tmpdir(), "modal-local-"));
  const routerTokens = new CommandRouterTokens();
  const authTokens = new CommandRouterTokens();
  const calls: string[] = [];
  const failures: ModalServerFailure[] = [];
  const apps = new Map<string, { appId: string; name: string; environmentName: string }>();
  const images = new Map<string, LocalImageRecord & { seedDirectory?: string; pendingFailureLog?: string }>();
  const secrets = new Map<string, Record<string, string>>();
  const sandboxes = new Map<string, SandboxState>();
  const tasks = new Map<string, SandboxState>();
  let closed = false;

  const failure = <K extends ModalServerFailure["kind"]>(kind: K) =>
    failures.find((candidate) => candidate.kind === kind) as Extract<ModalServerFailure, { kind: K }> | undefined;

  const record = (service: string, method: string) => calls.push(`${service}/${method}`);

  function checkCredentials(context: CallContext): void {
    const authToken = context.metadata.get("x-modal-auth-token");
    if (typeof authToken === "string" && authTokens.verify(authToken) === tokenId && !failure("invalid-token")) return;
    const id = context.metadata.get("x-modal-token-id");
    const secret = context.metadata.get("x-modal-token-secret");
    if (failure("invalid-token") || id !== tokenId || secret !== tokenSecret) {
      throw new ServerError(Status.UNAUTHENTICATED, "Token ID or secret is invalid. Please check your Modal credentials.");
    }
  }

  function sandboxState(sandboxId: string): SandboxState {
    const state = sandboxes.get(sandboxId);
    if (!state) throw new ServerError(Status.NOT_FOUND, `Sandbox ${sandboxId} not found`);
    return state;
  }

  async function endSandbox(state: SandboxState, result: LocalSandboxRecord["result"]): Promise<void> {
    if (!state.record.result) state.record.result = result;
    clearTimeout(state.timeoutTimer);
    await state.task.terminate();
    for (const tunnel of state.tunnels) {
      for (const socket of tunnel.sockets) socket.destroy();
      tunnel.server.close();
    }
    await state.task.remove();
  }

  async function openTunnel(task: LocalTask, containerPort: number): Promise<SandboxState["tunnels"][number]> {
    const sockets = new Set<Duplex>();
    const server = createTcpServer((incoming) => {
      sockets.add(incoming);
      const outgoing = task.connect(containerPort);
      sockets.add(outgoing);
      incoming.pipe(outgoing).pipe(incoming);
      const close = () => {
        incoming.destroy();
        outgoing.destroy();
        sockets.delete(incoming);
        sockets.delete(outgoing);
      };
      incoming.on("error", close).on("close", close);
      outgoing.on("error", close).on("close", close);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    const port = typeof address === "object" && address ? address.port : 0;
    return { containerPort, port, server, sockets };
  }

  function tunnelData(state: SandboxState) {
    return state.tunnels.map((tunnel) => ({ host: "127.0.0.1", port: tunnel.port, containerPort: tunnel.containerPort }));
  }

  async function waitForEnd(state: SandboxState, timeoutSeconds: number, signal: AbortSignal): Promise<void> {
    if (state.record.result || timeoutSeconds <= 0) return;
    await Promise.race([
      state.ended,
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutSeconds * 1000);
        signal.addEventListener("abort", () => {
          clearTimeout(timer);
          resolve();
        });
      }),
    ]);
  }

  // ----- control plane -----
  const controlPlane: Record<string, (request: any, context: CallContext) => unknown> = {
    async authTokenGet(_request: unknown, context: CallContext) {
      record("ModalClient", "AuthTokenGet");
      checkCredentials(context);
      return { token: authTokens.issue(tokenId, 3600) };
    },
    async environmentGetOrCreate(request: { deploymentName: string }, context: CallContext) {
      record("ModalClient", "EnvironmentGetOrCreate");
      checkCredentials(context);
      const name = request.deploymentName || "main";
      return {
        environmentId: `en-${hashOf(name).slice(0, 22)}`,
        metadata: { name, settings: { imageBuilderVersion: IMAGE_BUILDER_VERSION, webhookSuffix: "" } },
      };
    },
    async appGetOrCreate(request: { appName: string; environmentName: string; objectCreationType: number }, context: CallContext) {
      record("ModalClient", "AppGetOrCreate");
      checkCredentials(context);
      const key = `${request.environmentName}/${request.appName}`;
      let app = apps.get(key);
      if (!app) {
        // 1 is OBJECT_CREATION_TYPE_CREATE_IF_MISSING.
        if (request.objectCreationType !== 1) throw new ServerError(Status.NOT_FOUND, `App '${request.appName}' not found`);
        app = { appId: newId("ap"), name: request.appName, environmentName: request.environmentName };
        apps.set(key, app);
      }
      return { appId: app.appId };
    },
    async secretGetOrCreate(request: { deploymentName: string; objectCreationType: number; envDict: Record<string, string> }, context: CallContext) {
      record("ModalClient", "SecretGetOrCreate");
      checkCredentials(context);
      // 5 is OBJECT_CREATION_TYPE_EPHEMERAL, what `secrets.fromObject` creates; named secrets are not kept here.
      if (request.objectCreationType !== 5) throw new ServerError(Status.NOT_FOUND, `Secret '${request.deploymentName}' not found`);
      const secretId = newId("st");
      secrets.set(secretId, { ...request.envDict });
      return { secretId };
    },
    async imageGetOrCreate(
      request: { appId: string; image?: { dockerfileCommands: string[]; baseImages: Array<{ imageId: string }> }; forceBuild: boolean },
      context: CallContext,
    ) {
      record("ModalClient", "ImageGetOrCreate");
      checkCredentials(context);
      if (![...apps.values()].some((app) => app.appId === request.appId)) throw new ServerError(Status.NOT_FOUND, `App ${request.appId} not found`);
      const dockerfileCommands = request.image?.dockerfileCommands ?? [];
      const baseImageIds = (request.image?.baseImages ?? []).map((base) => base.imageId);
      for (const baseImageId of baseImageIds) {
        if (!images.has(baseImageId)) throw new ServerError(Status.NOT_FOUND, `Image ${baseImageId} not found`);
      }
      const imageId = `im-${hashOf(JSON.stringify({ dockerfileCommands, baseImageIds })).slice(0, 22)}`;
      const buildFailure = failure("image-build");
      const existing = images.get(imageId);
      if (existing && !buildFailure && !request.forceBuild) return { imageId, result: { status: GENERIC_STATUS.SUCCESS } };
      const seedDirectory = baseImageIds.map((id) => images.get(id)?.seedDirectory).find(Boolean);
      images.set(imageId, {
        imageId,
        dockerfileCommands,
        baseImageIds,
        ...(seedDirectory ? { seedDirectory } : {}),
        ...(buildFailure ? { pendingFailureLog: buildFailure.log } : {}),
      });
      // A new build is followed through ImageJoinStreaming, as with Modal's builders.
      return { imageId };
    },
    async *imageJoinStreaming(request: { imageId: string }, context: CallContext) {
      record("ModalClient", "ImageJoinStreaming");
      checkCredentials(context);
      const image = images.get(request.imageId);
      if (!image) throw new ServerError(Status.NOT_FOUND, `Image ${request.imageId} not found`);
      const lines = image.pendingFailureLog
        ? [...image.dockerfileCommands.map((command) => `=> ${command}\n`), image.pendingFailureLog]
        : image.dockerfileCommands.map((command) => `=> ${command}\n`);
      yield { entryId: "1", taskLogs: lines.map((data) => ({ data, fileDescriptor: 2 })) };
      if (image.pendingFailureLog) {
        const log = image.pendingFailureLog;
        images.delete(request.imageId);
        yield { entryId: "2", result: { status: GENERIC_STATUS.FAILURE, exception: log }, eof: true };
        return;
      }
      yield { entryId: "2", result: { status: GENERIC_STATUS.SUCCESS }, eof: true };
    },
    async imageDelete(request: { imageId: string }, context: CallContext) {
      record("ModalClient", "ImageDelete");
      checkCredentials(context);
      const image = images.get(request.imageId);
      if (!image) throw new ServerError(Status.NOT_FOUND, `Could not find image with ID ${request.imageId}`);
      images.delete(request.imageId);
      // A snapshot's files go with it; sandboxes made from it have their own copy.
      if (image.snapshotOf && image.seedDirectory) await rm(image.seedDirectory, { recursive: true, force: true });
      return {};
    },
    async imageFromId(request: { imageId: string }, context: CallContext) {
      record("ModalClient", "ImageFromId");
      checkCredentials(context);
      if (!images.has(request.imageId)) throw new ServerError(Status.NOT_FOUND, `Could not find image with ID ${request.imageId}`);
      return { imageId: request.imageId };
    },
    async sandboxCreateV2(
      request: {
        appId: string;
        definition?: Record<string, any>;
        secretSources: Array<{ secretId?: string; env?: { contents: Record<string, string> } }>;
        tags: Array<{ tagName: string; tagValue: string }>;
      },
      context: CallContext,
    ) {
      record("ModalClient", "SandboxCreateV2");
      checkCredentials(context);
      const app = [...apps.values()].find((candidate) => candidate.appId === request.appId);
      if (!app) throw new ServerError(Status.NOT_FOUND, `App ${request.appId} not found`);
      const definition = request.definition ?? {};
      const image = images.get(String(definition.imageId ?? ""));
      if (!image) throw new ServerError(Status.NOT_FOUND, `Image ${String(definition.imageId)} not found`);
      const quota = failure("quota");
      if (quota) throw new ServerError(Status.RESOURCE_EXHAUSTED, quota.message ?? "Sandbox quota exceeded: your workspace has reached its limit of concurrent sandboxes.");
      const environment: Record<string, string> = {};
      for (const source of request.secretSources) {
        if (source.env) Object.assign(environment, source.env.contents);
        if (source.secretId) Object.assign(environment, secrets.get(source.secretId) ?? {});
      }
      for (const secretId of (definition.secretIds as string[] | undefined) ?? []) Object.assign(environment, secrets.get(secretId) ?? {});
      const sandboxId = `sb-v2-${randomBytes(12).toString("hex")}`;
      const taskId = newId("ta");
      const workdir = typeof definition.workdir === "string" && definition.workdir ? definition.workdir : "/";
      const networkAccessType = (definition.networkAccess as { networkAccessType?: number } | undefined)?.networkAccessType ?? 1;
      const task = new LocalTask({
        rootDirectory: join(baseDirectory, "sandboxes", sandboxId),
        ...(image.seedDirectory ? { seedDirectory: image.seedDirectory } : {}),
        readOnlyFiles: { [opencodePath]: opencodeBinary },
        entrypoint: (definition.entrypointArgs as string[] | undefined) ?? [],
        workdir,
        environment,
        // 2 is NetworkAccessType.BLOCKED.
        blockNetwork: networkAccessType === 2 || definition.blockNetwork === true,
      });
      const tags = Object.fromEntries(request.tags.map((tag) => [tag.tagName, tag.tagValue]));
      const state: SandboxState = {
        record: { sandboxId, taskId, appId: app.appId, imageId: image.imageId, tags, definition, secretNames: Object.keys(environment), commands: [], result: null },
        environmentName: app.environmentName,
        createdAt: Date.now() / 1000,
        task,
        execs: new Map(),
        tunnels: [],
        tunnelsHidden: failure("tunnel-never-opens") !== undefined,
        ended: task.ended.then(() => undefined),
      };
      try {
        await task.start();
      } catch (error) {
        await task.remove();
        throw new ServerError(Status.INTERNAL, `The sandbox could not start: ${(error as Error).message}`);
      }
      sandboxes.set(sandboxId, state);
      tasks.set(taskId, state);
      task.ended.then((exit) => {
        if (!state.record.result) {
          state.record.result = { status: exit.code === 0 ? GENERIC_STATUS.SUCCESS : GENERIC_STATUS.FAILURE, exitcode: exit.code ?? 128 + (exit.signal ?? 9), exception: exit.stderr.trim() };
        }
        void endSandbox(state, state.record.result);
      });
      const timeoutSeconds = Number(definition.timeoutSecs ?? 300);
      if (timeoutSeconds > 0) {
        state.timeoutTimer = setTimeout(() => {
          void endSandbox(state, { status: GENERIC_STATUS.TIMEOUT, exitcode: 124, exception: `Sandbox timed out after ${timeoutSeconds}s` });
        }, timeoutSeconds * 1000);
        state.timeoutTimer.unref();
      }
      const ports = ((definition.openPorts as { ports?: Array<{ port: number }> } | undefined)?.ports ?? []).map((spec) => spec.port);
      for (const port of ports) state.tunnels.push(await openTunnel(task, port));
      return {
        sandboxId,
        taskId,
        tunnels: state.tunnelsHidden ? [] : tunnelData(state),
        commandRouterAccess: { jwt: routerTokens.issue(taskId), url: commandRouterUrl },
      };
    },
    async sandboxGetTaskIdV2(request: { sandboxId: string }, context: CallContext) {
      record("ModalClient", "SandboxGetTaskIdV2");
      checkCredentials(context);
      const state = sandboxState(request.sandboxId);
      if (state.record.result) return { taskResult: state.record.result };
      return { taskId: state.record.taskId };
    },
    async sandboxGetCommandRouterAccess(request: { sandboxId?: string; taskId?: string }, context: CallContext) {
      record("ModalClient", "SandboxGetCommandRouterAccess");
      checkCredentials(context);
      const state = request.sandboxId ? sandboxState(request.sandboxId) : tasks.get(request.taskId ?? "");
      if (!state) throw new ServerError(Status.NOT_FOUND, "Task not found");
      if (state.record.result) throw new ServerError(Status.FAILED_PRECONDITION, "The sandbox has finished.");
      return { jwt: routerTokens.issue(state.record.taskId), url: commandRouterUrl };
    },
    async sandboxWaitV2(request: { sandboxId: string; timeout: number }, context: CallContext) {
      record("ModalClient", "SandboxWaitV2");
      checkCredentials(context);
      const state = sandboxState(request.sandboxId);
      await waitForEnd(state, request.timeout, context.signal);
      return { result: state.record.result ?? undefined, metadata: { appId: state.record.appId } };
    },
    async sandboxTerminateV2(request: { sandboxId: string }, context: CallContext) {
      record("ModalClient", "SandboxTerminateV2");
      checkCredentials(context);
      const state = sandboxState(request.sandboxId);
      const existing = state.record.result;
      await endSandbox(state, { status: GENERIC_STATUS.TERMINATED, exitcode: 137, exception: "Sandbox was terminated" });
      return { existingResult: existing ?? undefined };
    },
    async sandboxListV2(
      request: { appId: string; environmentName: string; beforeTimestamp: number; includeFinished: boolean; tags: Array<{ tagName: string; tagValue: string }> },
      context: CallContext,
    ) {
      record("ModalClient", "SandboxListV2");
      checkCredentials(context);
      const found = [...sandboxes.values()]
        .filter((state) => (request.appId ? state.record.appId === request.appId : state.environmentName === request.environmentName))
        .filter((state) => request.includeFinished || !state.record.result)
        .filter((state) => !request.beforeTimestamp || state.createdAt < request.beforeTimestamp)
        .filter((state) => request.tags.every((tag) => state.record.tags[tag.tagName] === tag.tagValue))
        .sort((left, right) => right.createdAt - left.createdAt);
      return {
        sandboxes: found.map((state) => ({
          id: state.record.sandboxId,
          createdAt: state.createdAt,
          appId: state.record.appId,
          imageId: state.record.imageId,
          tags: Object.entries(state.record.tags).map(([tagName, tagValue]) => ({ tagName, tagValue })),
        })),
      };
    },
    async sandboxGetTunnelsV2(request: { sandboxId: string; timeout: number }, context: CallContext) {
      record("ModalClient", "SandboxGetTunnelsV2");
      checkCredentials(context);
      const state = sandboxState(request.sandboxId);
      if (state.tunnelsHidden) {
        await waitForEnd(state, request.timeout, context.signal);
        return { result: { status: GENERIC_STATUS.TIMEOUT }, tunnels: [] };
      }
      return { result: { status: GENERIC_STATUS.SUCCESS }, tunnels: tunnelData(state) };
    },
    async sandboxTagsGetV2(request: { sandboxId: string }, context: CallContext) {
      record("ModalClient", "SandboxTagsGetV2");
      checkCredentials(context);
      const state = sandboxState(request.sandboxId);
      return { tags: Object.entries(state.record.tags).map(([tagName, tagValue]) => ({ tagName, tagValue })) };
    },
  };

  // ----- task command router -----
  function routerTask(taskId: string, context: CallContext): SandboxState {
    const header = context.metadata.get("authorization");
    const token = typeof header === "string" && header.startsWith("Bearer ") ? header.slice(7) : "";
    const tokenTask = routerTokens.verify(token);
    if (!tokenTask) throw new ServerError(Status.UNAUTHENTICATED, "Invalid or expired command router token");
    if (tokenTask !== taskId) throw new ServerError(Status.PERMISSION_DENIED, "The token is for another task");
    const state = tasks.get(taskId);
    if (!state) throw new ServerError(Status.NOT_FOUND, `Task ${taskId} not found`);
    return state;
  }

  function execOf(state: SandboxState, execId: string): LocalExec {
    const exec = state.execs.get(execId);
    if (!exec) throw new ServerError(Status.NOT_FOUND, `Exec ${execId} not found`);
    return exec;
  }

  const exitOf = async (exec: LocalExec, signal: AbortSignal) =>
    Promise.race([exec.exited, new Promise<undefined>((resolve) => signal.addEventListener("abort", () => resolve(undefined)))]);

  const commandRouter: Record<string, (request: any, context: CallContext) => unknown> = {
    async taskExecStart(
      request: {
        taskId: string;
        execId: string;
        commandArgs: string[];
        workdir?: string;
        timeoutSecs?: number;
        env: Record<string, string>;
        secretSources: Array<{ secretId?: string; env?: { contents: Record<string, string> } }>;
      },
      context: CallContext,
    ) {
      record("TaskCommandRouter", "TaskExecStart");
      const state = routerTask(request.taskId, context);
      if (state.record.result || !state.task.alive) throw new ServerError(Status.FAILED_PRECONDITION, `Task ${request.taskId} has finished`);
      if (state.execs.has(request.execId)) return {};
      const environment: Record<string, string> = { ...request.env };
      for (const source of request.secretSources) {
        if (source.env) Object.assign(environment, source.env.contents);
        if (source.secretId) Object.assign(environment, secrets.get(source.secretId) ?? {});
      }
      state.record.commands.push([...request.commandArgs]);
      const exec = state.task.exec(request.commandArgs, { ...(request.workdir ? { workdir: request.workdir } : {}), environment });
      state.execs.set(request.execId, exec);
      if (request.timeoutSecs) {
        const timer = setTimeout(() => exec.kill(), request.timeoutSecs * 1000);
        void exec.exited.then(() => clearTimeout(timer));
      }
      return {};
    },
    async *taskExecStdioRead(request: { taskId: string; execId: string; offset: number; fileDescriptor: number }, context: CallContext) {
      record("TaskCommandRouter", "TaskExecStdioRead");
      const state = routerTask(request.taskId, context);
      const exec = execOf(state, request.execId);
      // 0 is stdout, 1 is stderr (TaskExecStdioFileDescriptor).
      const buffer = request.fileDescriptor === 1 ? exec.stderr : exec.stdout;
      let offset = Number(request.offset);
      while (true) {
        const data = await buffer.read(offset, context.signal);
        if (!data) return;
        offset += data.length;
        yield { data };
      }
    },
    async taskExecStdinWrite(request: { taskId: string; execId: string; offset: number; data: Uint8Array; eof: boolean }, context: CallContext) {
      record("TaskCommandRouter", "TaskExecStdinWrite");
      const exec = execOf(routerTask(request.taskId, context), request.execId);
      exec.writeStdin(Number(request.offset), request.data, request.eof);
      return {};
    },
    async taskExecStdinStatus(request: { taskId: string; execId: string }, context: CallContext) {
      record("TaskCommandRouter", "TaskExecStdinStatus");
      const exec = execOf(routerTask(request.taskId, context), request.execId);
      return { numBytesWritten: exec.stdinBytesWritten, closed: exec.stdinClosed };
    },
    async taskExecWait(request: { taskId: string; execId: string }, context: CallContext) {
      record("TaskCommandRouter", "TaskExecWait");
      const exec = execOf(routerTask(request.taskId, context), request.execId);
      const exit = await exitOf(exec, context.signal);
      if (!exit) throw new ServerError(Status.DEADLINE_EXCEEDED, "Still running");
      return exit;
    },
    async taskExecPoll(request: { taskId: string; execId: string }, context: CallContext) {
      record("TaskCommandRouter", "TaskExecPoll");
      const exec = execOf(routerTask(request.taskId, context), request.execId);
      const exit = await Promise.race([exec.exited, Promise.resolve(undefined)]);
      return exit ?? {};
    },
    async taskSnapshotFilesystem(request: { taskId: string; ttlSeconds?: number }, context: CallContext) {
      record("TaskCommandRouter", "TaskSnapshotFilesystem");
      const state = routerTask(request.taskId, context);
      const imageId = `im-${randomBytes(11).toString("hex")}`;
      const seedDirectory = join(baseDirectory, "snapshots", imageId);
      await mkdir(dirname(seedDirectory), { recursive: true });
      await state.task.snapshotInto(seedDirectory);
      const source = images.get(state.record.imageId);
      images.set(imageId, {
        imageId,
        dockerfileCommands: source?.dockerfileCommands ?? [],
        baseImageIds: [],
        snapshotOf: state.record.sandboxId,
        seedDirectory,
        ...(request.ttlSeconds ? { ttlSeconds: Number(request.ttlSeconds) } : {}),
      });
      return { imageId };
    },
  };

  // The SDK allows messages of up to 100 MiB; so does Modal.
  const channelOptions = { "grpc.max_receive_message_length": 100 * 1024 * 1024, "grpc.max_send_message_length": 100 * 1024 * 1024 };
  const controlServer = createServer(channelOptions);
  controlServer.add(definitionWithMethods(protocol.modalClient, [...IMPLEMENTED_CONTROL_PLANE_METHODS]) as never, controlPlane as never);
  const routerServer = createServer(channelOptions);
  routerServer.add(definitionWithMethods(protocol.taskCommandRouter, [...IMPLEMENTED_COMMAND_ROUTER_METHODS]) as never, commandRouter as never);
  const controlPort = await controlServer.listen("127.0.0.1:0");
  const routerPort = await routerServer.listen("127.0.0.1:0");
  const commandRouterUrl = `https://127.0.0.1:${routerPort}`;

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    await Promise.all(
      [...sandboxes.values()].map((state) => endSandbox(state, state.record.result ?? { status: GENERIC_STATUS.TERMINATED, exitcode: 137, exception: "Server closed" })),
    );
    await Promise.all([shutdown(controlServer), shutdown(routerServer)]);
    await rm(baseDirectory, { recursive: true, force: true });
  }

  return {
    url: `http://127.0.0.1:${controlPort}`,
    commandRouterUrl,
    tokenId,
    tokenSecret,
    sdkVersion: protocol.sdkVersion,
    calls,
    liveSandboxes: () => [...sandboxes.values()].filter((state) => !state.record.result && state.task.alive).map((state) => state.record),
    sandboxes: () => [...sandboxes.values()].map((state) => state.record),
    images: () =>
      [...images.values()].map(({ imageId, dockerfileCommands, baseImageIds, snapshotOf, ttlSeconds }) => ({
        imageId,
        dockerfileCommands,
        baseImageIds,
        ...(snapshotOf ? { snapshotOf } : {}),
        ...(ttlSeconds ? { ttlSeconds } : {}),
      })),
    createApp(name, environment = "") {
      const app = { appId: newId("ap"), name, environmentName: environment };
      apps.set(`${environment}/${name}`, app);
      return app.appId;
    },
    injectFailure: (value) => void failures.push(value),
    clearFailures: () => void failures.splice(0),
    async killSandbox(sandboxId, exception = "The sandbox's worker was lost.") {
      const state = sandboxState(sandboxId);
      await endSandbox(state, { status: GENERIC_STATUS.FAILURE, exitcode: 137, exception });
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

async function shutdown(server: Server): Promise<void> {
  // Open streams (stdio reads of killed commands) must not hold the shutdown up.
  server.forceShutdown();
}

function newId(prefix: string): string {
  const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  const bytes = randomBytes(22);
  return `${prefix}-${Array.from(bytes, (byte) => alphabet[byte % alphabet.length]).join("")}`;
}

function hashOf(value: string): string {
  return createHash("sha256").update(value).digest("hex");
}

/** The standalone OpenCode binary of the `opencode-ai` package that `@running-agent/core` depends on. */
function findOpencodeBinary(): string {
  const require = createRequire(import.meta.url);
  const coreManifest = require.resolve("@running-agent/core/package.json");
  const wrapperManifest = createRequire(coreManifest).resolve("opencode-ai/package.json");
  const platformPackage = process.arch === "arm64" ? "opencode-linux-arm64" : "opencode-linux-x64";
  const binary = join(dirname(createRequire(wrapperManifest).resolve(`${platformPackage}/package.json`)), "bin", "opencode");
  return binary;
}
