import { isIP } from "node:net";
import { agentError, ErrorCode, type SandboxNetworkPolicy } from "@running-agent/core";
import type { ModalClient } from "modal";
import type { ModalPreparedStateCache } from "./modal-prepared-state-cache.js";

/** The OpenCode version the default image installs (the one `@running-agent/core` is tested with). */
export const DEFAULT_OPENCODE_VERSION = "1.18.33";

/** Where the default image puts the OpenCode binary. */
export const DEFAULT_OPENCODE_PATH = "/usr/local/bin/opencode";

/**
 * The default image: Debian with Node (to fetch OpenCode's npm package), git, and the standalone
 * OpenCode binary of a pinned version linked to {@link DEFAULT_OPENCODE_PATH}.
 */
export const DEFAULT_IMAGE = {
  /** The registry image Modal builds from: Debian bookworm with Node 20. */
  registryTag: "node:20-bookworm-slim",
  /** Installs git and CA certificates, then the pinned OpenCode binary at {@link DEFAULT_OPENCODE_PATH}. */
  dockerfileCommands: [
    "RUN apt-get update && apt-get install -y --no-install-recommends git ca-certificates && rm -rf /var/lib/apt/lists/*",
    `RUN npm install --prefix /opt/opencode opencode-linux-x64@${DEFAULT_OPENCODE_VERSION} && ln -s /opt/opencode/node_modules/opencode-linux-x64/bin/opencode ${DEFAULT_OPENCODE_PATH}`,
  ],
} as const;

/** The image sandboxes start from. */
export type ModalImageSource =
  /** Built on Modal from a registry tag plus Dockerfile commands (cached by Modal across tasks). */
  | {
      /** A public registry image reference, such as `node:20-bookworm-slim`. */
      registryTag: string;
      /** Dockerfile lines (`RUN …`) Modal runs on top of `registryTag`, in order. Default none. */
      dockerfileCommands?: string[];
    }
  /** An image Modal already has: a prepared image or a filesystem snapshot. */
  | {
      /** The Modal image id (`im-…`), as returned by an image build or a snapshot. */
      imageId: string;
    };

/** Settings of {@link createModalSandbox}. */
export interface ModalSandboxSettings {
  /** The Modal app the sandboxes belong to: a name (created when missing) or `{ name, createIfMissing: false }`. Default `running-agent`. */
  app?:
    | string
    | {
        /** The Modal app name. */
        name: string;
        /** Whether the app is created when Modal has none of that name; when `false`, a missing app fails the sandbox's creation. Default `true`. */
        createIfMissing?: boolean;
      };
  /** The image. Default {@link DEFAULT_IMAGE}. */
  image?: ModalImageSource;
  /** CPU cores requested (fractions allowed); a task's `resources.cpu` wins. */
  cpu?: number;
  /** Memory requested in MiB; a task's `resources.memoryMiB` wins. */
  memoryMiB?: number;
  /** Longest a sandbox lives, in ms (rounded up to whole seconds); a shorter task timeout wins. Default 1 hour. */
  timeoutMs?: number;
  /** Modal terminates a sandbox idle this long, in ms (rounded up to whole seconds). */
  idleTimeoutMs?: number;
  /** Default network policy when a task gives none. Default `open`. */
  network?: SandboxNetworkPolicy;
  /** Extra tags on every sandbox. */
  tags?: Record<string, string>;
  /** Modal token; defaults to `MODAL_TOKEN_ID` / `MODAL_TOKEN_SECRET` or the Modal profile. */
  tokenId?: string;
  /** The secret that goes with `tokenId`: give both or neither (else `INVALID_OPTIONS`). */
  tokenSecret?: string;
  /** Modal environment name; defaults to the profile's. */
  environment?: string;
  /**
   * The Modal API address. The SDK reads it only from `MODAL_SERVER_URL` or the profile, so this
   * is applied while the client is constructed. Tests point it at the local server.
   */
  serverUrl?: string;
  /**
   * Prepared states (`createModalPreparedStateCache`): after the setup commands, a task's sandbox
   * filesystem is snapshotted under the core's key (repository, commit, setup commands), and later
   * tasks on that key create their sandbox from the snapshot, with the repository placed and the setup done.
   */
  preparedStates?: ModalPreparedStateCache;
  /** A ready client; settings for tokens, environment and server are then ignored. */
  client?: ModalClient;
  /** Where the repository lives inside the sandbox. Default `/workspace`. */
  workdir?: string;
  /** Writable folder outside the workdir for tool state. Default `/tmp/running-agent`. */
  scratchDir?: string;
  /**
   * Ports declared as encrypted tunnels at creation (Modal opens tunnels only for those).
   * Default: two random ports per sandbox. `allocatePort()` hands them out in order.
   */
  ports?: number[];
  /** Where OpenCode is inside the image. Default {@link DEFAULT_OPENCODE_PATH}. */
  opencodeBinary?: string;
  /** Address servers inside listen on so that tunnels reach them. Default `0.0.0.0`. */
  listenHostname?: string;
  /** How long `exposePort` waits for Modal to report the tunnel, in ms. Default 50 s. */
  tunnelTimeoutMs?: number;
}

/** The tag that marks a sandbox as made by this library; `reapOrphans` looks for it. */
export const MANAGED_TAG = "running-agent.managed";
/** The tag holding the task id. */
export const TASK_TAG = "running-agent.task";
/** The tag holding the creation time (ms since the epoch), for `reapOrphans({ olderThanMs })`. */
export const CREATED_TAG = "running-agent.created-at";

const APP_NAME = /^[a-zA-Z0-9\-_.]{1,64}$/;

/** Checks settings without I/O; throws INVALID_OPTIONS naming the setting. */
export function checkModalSettings(settings: ModalSandboxSettings): void {
  const invalid = (message: string) => agentError(ErrorCode.INVALID_OPTIONS, `createModalSandbox: ${message}`);
  const appName = typeof settings.app === "string" ? settings.app : settings.app?.name;
  if (settings.app !== undefined && (typeof appName !== "string" || !APP_NAME.test(appName))) {
    throw invalid("`app` must be a name of 1 to 64 letters, digits, dashes, dots or underscores.");
  }
  for (const [name, value] of [
    ["cpu", settings.cpu],
    ["memoryMiB", settings.memoryMiB],
    ["timeoutMs", settings.timeoutMs],
    ["idleTimeoutMs", settings.idleTimeoutMs],
    ["tunnelTimeoutMs", settings.tunnelTimeoutMs],
  ] as const) {
    if (value !== undefined && (typeof value !== "number" || !Number.isFinite(value) || value <= 0)) throw invalid(`\`${name}\` must be a positive number.`);
  }
  if (settings.timeoutMs !== undefined && settings.timeoutMs > 24 * 3600 * 1000) throw invalid("`timeoutMs` can be at most 24 hours on Modal.");
  const image = settings.image;
  if (image !== undefined) {
    if ("imageId" in image) {
      if (typeof image.imageId !== "string" || !/^im-[A-Za-z0-9]+$/.test(image.imageId)) throw invalid("`image.imageId` must be a Modal image id (`im-...`).");
    } else if (typeof image.registryTag !== "string" || image.registryTag.trim() === "") {
      throw invalid("`image` needs a `registryTag` or an `imageId`.");
    } else if (image.dockerfileCommands !== undefined && (!Array.isArray(image.dockerfileCommands) || image.dockerfileCommands.some((command) => typeof command !== "string"))) {
      throw invalid("`image.dockerfileCommands` must be an array of strings.");
    }
  }
  for (const [name, value] of [
    ["workdir", settings.workdir],
    ["scratchDir", settings.scratchDir],
    ["opencodeBinary", settings.opencodeBinary],
  ] as const) {
    if (value !== undefined && (typeof value !== "string" || !value.startsWith("/"))) throw invalid(`\`${name}\` must be an absolute path.`);
  }
  if (settings.ports !== undefined && (!Array.isArray(settings.ports) || settings.ports.length === 0 || settings.ports.some((port) => !Number.isInteger(port) || port < 1 || port > 65535))) {
    throw invalid("`ports` must be a non-empty list of TCP port numbers.");
  }
  for (const [key, value] of Object.entries(settings.tags ?? {})) {
    if (typeof value !== "string" || key.length === 0) throw invalid("`tags` must map names to strings.");
  }
  if (settings.listenHostname !== undefined && (typeof settings.listenHostname !== "string" || isIP(settings.listenHostname) === 0)) {
    throw invalid("`listenHostname` must be an IP address.");
  }
  if (settings.serverUrl !== undefined && !/^https?:\/\//.test(settings.serverUrl)) throw invalid("`serverUrl` must be an http(s) URL.");
  if ((settings.tokenId === undefined) !== (settings.tokenSecret === undefined)) throw invalid("give both `tokenId` and `tokenSecret`, or neither.");
  if (settings.network) checkNetworkPolicy(settings.network);
}

/** Checks a network policy; Modal filters by CIDR and by domain, so every policy maps. */
export function checkNetworkPolicy(policy: SandboxNetworkPolicy): void {
  if (policy === "none" || policy === "open") return;
  if (typeof policy !== "object" || policy === null || !Array.isArray(policy.allow)) {
    throw agentError(ErrorCode.INVALID_OPTIONS, `Unknown network policy ${JSON.stringify(policy)}: use "none", "open" or { allow: [...] }.`);
  }
  for (const entry of policy.allow) {
    if (typeof entry === "string" && entry.includes("/")) {
      const [address, prefix] = entry.split("/");
      const family = isIP(address ?? "");
      if (family === 0 || !/^\d{1,3}$/.test(prefix ?? "") || Number(prefix) > (family === 4 ? 32 : 128)) {
        throw agentError(ErrorCode.INVALID_OPTIONS, `Network allow-list: ${JSON.stringify(entry)} is not a CIDR range.`);
      }
    } else if (typeof entry !== "string" || (isIP(entry) === 0 && !/^[a-zA-Z0-9.*_-]+$/.test(entry))) {
      throw agentError(ErrorCode.INVALID_OPTIONS, `Network allow-list: ${JSON.stringify(entry)} is not a host name, address or CIDR range.`);
    }
  }
}

/** The SDK's create parameters for a network policy: Modal's own CIDR and domain allow-lists. */
export function networkParameters(policy: SandboxNetworkPolicy | undefined): { blockNetwork?: boolean; outboundCidrAllowlist?: string[]; outboundDomainAllowlist?: string[] } {
  if (!policy || policy === "open") return {};
  if (policy === "none") return { blockNetwork: true };
  // Modal's domain allow-list takes names; an address becomes a one-address range.
  const ranges = policy.allow.filter((entry) => entry.includes("/"));
  const addresses = policy.allow.filter((entry) => !entry.includes("/") && isIP(entry) !== 0).map((entry) => (isIP(entry) === 6 ? `${entry}/128` : `${entry}/32`));
  const domains = policy.allow.filter((entry) => !entry.includes("/") && isIP(entry) === 0);
  return { outboundCidrAllowlist: [...ranges, ...addresses], outboundDomainAllowlist: domains };
}
