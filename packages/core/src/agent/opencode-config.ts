import * as tar from "tar-stream";
import type { ResolvedModel } from "./model-resolution.js";

/**
 * The OpenCode release this config was checked against (the pre-seeded plugin dependency must name it).
 * Why `opencode-ai` is an exact dependency in package.json, where the others are caret ranges: the
 * binary it installs is the one the local sandbox runs, and the headless facts hold for this release only.
 */
export const OPENCODE_VERSION = "1.18.33";

/** Folders of one headless OpenCode run, all under the sandbox's scratch folder. */
export interface OpencodeFolders {
  /** The folder all the others are in: `<scratchDir>/opencode`. */
  root: string;
  /** OpenCode's `HOME`. */
  home: string;
  /** `XDG_CONFIG_HOME`: the pre-seeded config is under `config/opencode`. */
  config: string;
  /** `XDG_DATA_HOME`: sessions and logs. */
  data: string;
  /** `XDG_CACHE_HOME`. */
  cache: string;
  /** `XDG_STATE_HOME`. */
  state: string;
}

/** Lays out the per-run folders under `scratchDir`. */
export function opencodeFolders(scratchDir: string): OpencodeFolders {
  const root = `${scratchDir.replace(/\/+$/, "")}/opencode`;
  return { root, home: `${root}/home`, config: `${root}/config`, data: `${root}/data`, cache: `${root}/cache`, state: `${root}/state` };
}

/**
 * Permission rules that never wait for a human. The last matching rule wins, so `*` comes first.
 * Denied tools return an error to the model and the loop goes on.
 */
export const HEADLESS_PERMISSIONS: Record<string, string> = {
  "*": "allow",
  // Paths outside the repo, subagents, the web, skills and questions to a human are off for a background run.
  external_directory: "deny",
  question: "deny",
  webfetch: "deny",
  websearch: "deny",
  task: "deny",
  skill: "deny",
  // The default asks after three identical tool calls; a denial tells the model to change course instead.
  doom_loop: "deny",
};

/** The provider and model of the warm-up prompt a pooled server gets (see {@link buildOpencodeConfig}). */
export const WARM_UP_PROVIDER_ID = "running-agent-warm-up";
export const WARM_UP_MODEL_ID = "warm-up";

/**
 * The OpenCode config for one run: no updates, no sharing, no LSP or formatter downloads, never-blocking
 * permissions, and only the chosen provider, whose key OpenCode reads from the env var `apiKeyEnv`
 * (`{env:NAME}` substitution), so the key is not in the config text.
 *
 * `warmUpPort`: the server's own port. A second provider then points at the server itself, which
 * answers 401 (it demands its password): a prompt to it runs OpenCode's whole first-prompt path
 * (tool registry, shell detection, location services) and fails at once without calling the model.
 */
export function buildOpencodeConfig(model: ResolvedModel, apiKeyEnv: string | undefined, warmUpPort?: number): Record<string, unknown> {
  const modelRef = `${model.opencodeProviderId}/${model.model}`;
  const options: Record<string, unknown> = { ...model.opencodeProvider.options };
  if (apiKeyEnv !== undefined) options.apiKey = `{env:${apiKeyEnv}}`;
  const providers: Record<string, unknown> = { [model.opencodeProviderId]: { ...model.opencodeProvider, options } };
  if (warmUpPort !== undefined) {
    providers[WARM_UP_PROVIDER_ID] = {
      npm: "@ai-sdk/openai-compatible",
      name: "Running Agent warm-up",
      options: { baseURL: `http://127.0.0.1:${warmUpPort}/${WARM_UP_PROVIDER_ID}/v1`, apiKey: "none" },
      models: { [WARM_UP_MODEL_ID]: { name: WARM_UP_MODEL_ID, tool_call: true, limit: { context: 32_000, output: 1_000 } } },
    };
  }
  return {
    autoupdate: false,
    share: "disabled",
    lsp: false,
    formatter: false,
    // Snapshots copy the repo's objects into the data folder; the loop collects changes itself.
    snapshot: false,
    model: modelRef,
    // Titles and summaries use the same model, so no second provider is ever needed.
    small_model: modelRef,
    enabled_providers: Object.keys(providers),
    provider: providers,
    permission: HEADLESS_PERMISSIONS,
  };
}

/** The environment of the OpenCode server process. Holds no secret. */
export function buildOpencodeEnv(input: {
  folders: OpencodeFolders;
  config: Record<string, unknown>;
  allowRepoAgentConfig: boolean;
  serverPassword?: string;
}): Record<string, string> {
  const { folders } = input;
  return {
    HOME: folders.home,
    XDG_CONFIG_HOME: folders.config,
    XDG_DATA_HOME: folders.data,
    XDG_CACHE_HOME: folders.cache,
    XDG_STATE_HOME: folders.state,
    OPENCODE_CONFIG_CONTENT: JSON.stringify(input.config),
    OPENCODE_DISABLE_MODELS_FETCH: "1",
    OPENCODE_DISABLE_AUTOUPDATE: "1",
    OPENCODE_DISABLE_LSP_DOWNLOAD: "1",
    OPENCODE_DISABLE_CLAUDE_CODE: "1",
    OPENCODE_DISABLE_EXTERNAL_SKILLS: "1",
    OPENCODE_DISABLE_SHARE: "1",
    // Edits are reported by the tools themselves; watching the whole repo is work for nothing.
    OPENCODE_EXPERIMENTAL_DISABLE_FILEWATCHER: "1",
    // A headless server serves no web UI.
    OPENCODE_DISABLE_EMBEDDED_WEB_UI: "1",
    // Without the repo's config there is no plugin to load; `pure` makes sure none is.
    ...(input.allowRepoAgentConfig ? {} : { OPENCODE_DISABLE_PROJECT_CONFIG: "1", OPENCODE_PURE: "1" }),
    ...(input.serverPassword ? { OPENCODE_SERVER_PASSWORD: input.serverPassword } : {}),
  };
}

/**
 * Files that stop OpenCode's background `npm install` of its plugin package in the global config folder:
 * it skips the install when `node_modules/` exists and the lock's root lists every dependency.
 * Paths are relative to {@link OpencodeFolders.root}; a trailing `/` marks an empty folder.
 */
export function preSeededConfigEntries(): Array<{
  /** Relative to the config root; a trailing `/` marks a folder. */
  path: string;
  /** The file's text; absent for a folder. */
  content?: string;
}> {
  const dependencies = { "@opencode-ai/plugin": OPENCODE_VERSION };
  return [
    { path: "home/" },
    { path: "data/" },
    { path: "cache/" },
    { path: "state/" },
    { path: "config/opencode/node_modules/" },
    { path: "config/opencode/package.json", content: `${JSON.stringify({ name: "opencode-config", private: true, dependencies }, null, 2)}\n` },
    {
      path: "config/opencode/package-lock.json",
      content: `${JSON.stringify({ name: "opencode-config", lockfileVersion: 3, requires: true, packages: { "": { name: "opencode-config", dependencies } } }, null, 2)}\n`,
    },
  ];
}

/** {@link preSeededConfigEntries} as a tar archive for `SandboxSession.putArchive` into {@link OpencodeFolders.root}. */
export async function preSeededArchive(entries = preSeededConfigEntries()): Promise<Uint8Array> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (chunk: Buffer) => chunks.push(chunk));
  const ended = new Promise<void>((resolve, reject) => {
    pack.on("end", resolve);
    pack.on("error", reject);
  });
  for (const entry of entries) {
    if (entry.path.endsWith("/")) pack.entry({ name: entry.path, type: "directory", mode: 0o755, mtime: new Date(0) });
    else pack.entry({ name: entry.path, type: "file", mode: 0o644, mtime: new Date(0) }, entry.content ?? "");
  }
  pack.finalize();
  await ended;
  return new Uint8Array(Buffer.concat(chunks));
}
