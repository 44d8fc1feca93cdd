import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { resolveModel } from "./model-resolution.js";
import { readArchive } from "../archive.js";
import { buildOpencodeConfig, buildOpencodeEnv, opencodeFolders, OPENCODE_VERSION, preSeededArchive, preSeededConfigEntries, WARM_UP_PROVIDER_ID } from "./opencode-config.js";

const compatible = resolveModel({ provider: "openai-compatible", model: "m1", baseURL: "http://127.0.0.1:9/v1", apiKey: "sk-secret-value" }, {});

describe("buildOpencodeConfig", () => {
  it("refers to the key by env var name only, and enables only the chosen provider", () => {
    const config = buildOpencodeConfig(compatible, "MODEL_KEY");
    const text = JSON.stringify(config);
    expect(text).not.toContain("sk-secret-value");
    expect(config).toMatchObject({
      model: "openai-compatible/m1",
      small_model: "openai-compatible/m1",
      enabled_providers: ["openai-compatible"],
      provider: { "openai-compatible": { npm: "@ai-sdk/openai-compatible", options: { baseURL: "http://127.0.0.1:9/v1", apiKey: "{env:MODEL_KEY}" } } },
      autoupdate: false,
      share: "disabled",
      lsp: false,
      formatter: false,
    });
  });

  it("with warmUpPort, adds the warm-up provider pointing at the server itself, next to the chosen one", () => {
    const config = buildOpencodeConfig(compatible, "K", 4321) as { enabled_providers: string[]; provider: Record<string, { options: Record<string, unknown> }>; model: string };
    expect(config.enabled_providers).toEqual(["openai-compatible", WARM_UP_PROVIDER_ID]);
    expect(config.provider[WARM_UP_PROVIDER_ID]!.options.baseURL).toBe(`http://127.0.0.1:4321/${WARM_UP_PROVIDER_ID}/v1`);
    expect(config.model).toBe("openai-compatible/m1");
    expect(JSON.stringify(config)).not.toContain("sk-secret-value");
  });

  it("leaves the key out when the model has none", () => {
    const keyless = resolveModel({ provider: "openai-compatible", model: "m1", baseURL: "http://127.0.0.1:9/v1" }, {});
    const config = buildOpencodeConfig(keyless, undefined) as { provider: Record<string, { options: Record<string, unknown> }> };
    expect(config.provider["openai-compatible"]!.options).toEqual({ baseURL: "http://127.0.0.1:9/v1" });
  });

  it("allows everything first and then denies what would block or leave the repo (the last matching rule wins)", () => {
    const permission = buildOpencodeConfig(compatible, "K").permission as Record<string, string>;
    const keys = Object.keys(permission);
    expect(keys[0]).toBe("*");
    expect(permission["*"]).toBe("allow");
    for (const blocked of ["external_directory", "question", "doom_loop", "task", "webfetch"]) expect(permission[blocked], blocked).toBe("deny");
  });
});

describe("buildOpencodeEnv", () => {
  const folders = opencodeFolders("/scratch/");

  it("points HOME and the XDG folders into the scratch folder and switches off downloads", () => {
    const env = buildOpencodeEnv({ folders, config: { a: 1 }, allowRepoAgentConfig: false });
    expect(env).toMatchObject({
      HOME: "/scratch/opencode/home",
      XDG_CONFIG_HOME: "/scratch/opencode/config",
      XDG_DATA_HOME: "/scratch/opencode/data",
      XDG_CACHE_HOME: "/scratch/opencode/cache",
      XDG_STATE_HOME: "/scratch/opencode/state",
      OPENCODE_CONFIG_CONTENT: '{"a":1}',
      OPENCODE_DISABLE_MODELS_FETCH: "1",
      OPENCODE_DISABLE_AUTOUPDATE: "1",
      OPENCODE_DISABLE_LSP_DOWNLOAD: "1",
      OPENCODE_DISABLE_PROJECT_CONFIG: "1",
    });
    expect(env.OPENCODE_SERVER_PASSWORD).toBeUndefined();
  });

  it("lets the repo's own agent config apply only when asked to", () => {
    const allowed = buildOpencodeEnv({ folders, config: {}, allowRepoAgentConfig: true });
    expect(allowed.OPENCODE_DISABLE_PROJECT_CONFIG).toBeUndefined();
    expect(allowed.OPENCODE_PURE).toBeUndefined();
    expect(buildOpencodeEnv({ folders, config: {}, allowRepoAgentConfig: false }).OPENCODE_PURE).toBe("1");
    expect(buildOpencodeEnv({ folders, config: {}, allowRepoAgentConfig: true, serverPassword: "pw" }).OPENCODE_SERVER_PASSWORD).toBe("pw");
  });
});

describe("preSeededConfigEntries", () => {
  it("holds an empty node_modules and a lock whose root lists the plugin package, so OpenCode skips its npm install", () => {
    const entries = preSeededConfigEntries();
    expect(entries.map((entry) => entry.path)).toContain("config/opencode/node_modules/");
    const manifest = JSON.parse(entries.find((entry) => entry.path === "config/opencode/package.json")!.content!);
    const lock = JSON.parse(entries.find((entry) => entry.path === "config/opencode/package-lock.json")!.content!);
    expect(manifest.dependencies).toEqual({ "@opencode-ai/plugin": OPENCODE_VERSION });
    expect(Object.keys(lock.packages[""].dependencies)).toEqual(Object.keys(manifest.dependencies));
  });
});

describe("preSeededArchive", () => {
  it("packs the entries as a tar that the core's reader unpacks to the same folders and files", async () => {
    const entries = await readArchive(await preSeededArchive());
    const byPath = new Map(entries.map((entry) => [entry.path, entry]));
    expect(byPath.get("config/opencode/node_modules")?.type).toBe("directory");
    for (const folder of ["home", "data", "cache", "state"]) expect(byPath.get(folder)?.type).toBe("directory");
    const lock = byPath.get("config/opencode/package-lock.json")!;
    expect(lock.type).toBe("file");
    expect(new TextDecoder().decode(lock.content)).toBe(preSeededConfigEntries().find((entry) => entry.path === "config/opencode/package-lock.json")!.content);
  });
});

describe("OPENCODE_VERSION", () => {
  it("matches the installed opencode-ai package (re-check the headless facts when it changes)", () => {
    const installed = createRequire(import.meta.url)("opencode-ai/package.json") as { version: string };
    expect(installed.version).toBe(OPENCODE_VERSION);
  });
});
