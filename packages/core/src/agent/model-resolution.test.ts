import { describe, expect, it } from "vitest";
import { ErrorCode, RunningAgentError } from "../errors.js";
import { resolveModel } from "./model-resolution.js";

function errorOf(run: () => unknown): RunningAgentError {
  try {
    run();
  } catch (error) {
    expect(RunningAgentError.isInstance(error)).toBe(true);
    return error as RunningAgentError;
  }
  throw new Error("expected an error");
}

describe("resolveModel", () => {
  it("defaults to Gemini 2.5 Pro with GEMINI_API_KEY, falling back to GOOGLE_GENERATIVE_AI_API_KEY", () => {
    const model = resolveModel(undefined, { GEMINI_API_KEY: "g-key" });
    expect(model).toMatchObject({
      provider: "google",
      model: "gemini-2.5-pro",
      label: "google/gemini-2.5-pro",
      opencodeProviderId: "google",
      apiKey: "g-key",
      apiKeySource: "GEMINI_API_KEY",
      apiHost: "generativelanguage.googleapis.com",
    });
    // Built-in providers need no package name or model entry: OpenCode bundles both.
    expect(model.opencodeProvider).toEqual({ options: {} });
    expect(resolveModel(undefined, { GOOGLE_GENERATIVE_AI_API_KEY: "other" }).apiKeySource).toBe("GOOGLE_GENERATIVE_AI_API_KEY");
    expect(resolveModel(undefined, { GEMINI_API_KEY: "  ", GOOGLE_GENERATIVE_AI_API_KEY: "other" }).apiKey).toBe("other");
  });

  it("parses provider/model strings and reads each provider's key", () => {
    expect(resolveModel("anthropic/claude-sonnet-4-5", { ANTHROPIC_API_KEY: "a" })).toMatchObject({
      provider: "anthropic",
      model: "claude-sonnet-4-5",
      apiKey: "a",
      apiHost: "api.anthropic.com",
    });
    expect(resolveModel("openai/gpt-5", { OPENAI_API_KEY: "o" })).toMatchObject({ provider: "openai", model: "gpt-5", apiHost: "api.openai.com" });
    // The model id keeps any further slashes.
    expect(resolveModel("openai-compatible/meta-llama/Llama-3.3-70B", { OPENAI_COMPATIBLE_BASE_URL: "http://127.0.0.1:9000/v1" }).model).toBe(
      "meta-llama/Llama-3.3-70B",
    );
  });

  it("prefers a key given in the options over the environment", () => {
    const model = resolveModel({ provider: "anthropic", model: "claude-sonnet-4-5", apiKey: "from-options" }, { ANTHROPIC_API_KEY: "from-env" });
    expect(model.apiKey).toBe("from-options");
    expect(model.apiKeySource).toBe("options");
  });

  it("builds an openai-compatible block with the base URL, the model and its limits; the key is optional", () => {
    const model = resolveModel({ provider: "openai-compatible", model: "local-model", baseURL: "http://127.0.0.1:8080/v1/", limits: { context: 32_000, output: 4_000 } }, {});
    expect(model.apiKey).toBeUndefined();
    expect(model.baseURL).toBe("http://127.0.0.1:8080/v1");
    expect(model.apiHost).toBe("127.0.0.1");
    expect(model.opencodeProvider).toEqual({
      npm: "@ai-sdk/openai-compatible",
      name: "OpenAI-compatible endpoint",
      options: { baseURL: "http://127.0.0.1:8080/v1" },
      models: { "local-model": { name: "local-model", tool_call: true, limit: { context: 32_000, output: 4_000 } } },
    });
    expect(resolveModel({ provider: "openai-compatible", model: "m", baseURL: "https://llm.example.test/v1" }, { OPENAI_COMPATIBLE_API_KEY: "c" }).apiKey).toBe("c");
  });

  it("lets a built-in provider use another base URL (a proxy), which becomes the API host", () => {
    const model = resolveModel({ provider: "google", model: "gemini-2.5-flash", apiKey: "k", baseURL: "https://proxy.example.test/v1beta" }, {});
    expect(model.opencodeProvider.options).toEqual({ baseURL: "https://proxy.example.test/v1beta" });
    expect(model.apiHost).toBe("proxy.example.test");
  });

  it("declares a built-in provider's model only when limits are given (for ids the bundled catalogue does not know)", () => {
    const known = resolveModel({ provider: "google", model: "gemini-2.5-pro", apiKey: "k" }, {});
    expect(known.opencodeProvider.models).toBeUndefined();
    const newer = resolveModel({ provider: "google", model: "gemini-9-ultra", apiKey: "k", limits: { context: 2_000_000, output: 65_536 } }, {});
    expect(newer.opencodeProvider.models).toEqual({ "gemini-9-ultra": { name: "gemini-9-ultra", tool_call: true, limit: { context: 2_000_000, output: 65_536 } } });
  });

  it("names the env vars to set when the key is missing", () => {
    const google = errorOf(() => resolveModel(undefined, {}));
    expect(google.code).toBe(ErrorCode.MISSING_API_KEY);
    expect(google.phase).toBe("validate");
    expect(google.message).toContain("GEMINI_API_KEY or GOOGLE_GENERATIVE_AI_API_KEY");
    expect(errorOf(() => resolveModel("anthropic/claude-sonnet-4-5", {})).message).toContain("ANTHROPIC_API_KEY");
    expect(errorOf(() => resolveModel("openai/gpt-5", { OPENAI_API_KEY: "" })).code).toBe(ErrorCode.MISSING_API_KEY);
    expect(errorOf(() => resolveModel({ provider: "openai", model: "gpt-5", apiKey: " " }, {})).code).toBe(ErrorCode.MISSING_API_KEY);
  });

  it("rejects unknown providers, listing the known ones", () => {
    const error = errorOf(() => resolveModel("mistral/large", {}));
    expect(error.code).toBe(ErrorCode.UNKNOWN_MODEL_PROVIDER);
    expect(error.message).toContain("google, anthropic, openai, openai-compatible");
    expect(errorOf(() => resolveModel({ provider: "gemini" as never, model: "x" }, {})).code).toBe(ErrorCode.UNKNOWN_MODEL_PROVIDER);
  });

  it("rejects malformed models with INVALID_MODEL and a hint", () => {
    for (const bad of ["gemini-2.5-pro", "google/", "/gemini", ""]) {
      const error = errorOf(() => resolveModel(bad, { GEMINI_API_KEY: "k" }));
      expect(error.code, bad).toBe(ErrorCode.INVALID_MODEL);
      expect(error.message).toContain("provider/model");
    }
    expect(errorOf(() => resolveModel("google/gemini 2.5", { GEMINI_API_KEY: "k" })).code).toBe(ErrorCode.INVALID_MODEL);
    expect(errorOf(() => resolveModel(42 as never, {})).code).toBe(ErrorCode.INVALID_MODEL);
    expect(errorOf(() => resolveModel({ provider: "google", model: 7 as never }, {})).code).toBe(ErrorCode.INVALID_MODEL);
  });

  it("requires a usable base URL for openai-compatible, without credentials in it", () => {
    const missing = errorOf(() => resolveModel("openai-compatible/m", {}));
    expect(missing.code).toBe(ErrorCode.INVALID_MODEL);
    expect(missing.message).toContain("OPENAI_COMPATIBLE_BASE_URL");
    expect(errorOf(() => resolveModel({ provider: "openai-compatible", model: "m", baseURL: "not a url" }, {})).code).toBe(ErrorCode.INVALID_MODEL);
    expect(errorOf(() => resolveModel({ provider: "openai-compatible", model: "m", baseURL: "ftp://h/v1" }, {})).code).toBe(ErrorCode.INVALID_MODEL);
    const credentials = errorOf(() => resolveModel({ provider: "openai-compatible", model: "m", baseURL: "http://user:secret@h/v1" }, {}));
    expect(credentials.code).toBe(ErrorCode.INVALID_MODEL);
    expect(credentials.message).not.toContain("secret");
    expect(errorOf(() => resolveModel({ provider: "openai-compatible", model: "m", baseURL: "http://h/v1", limits: { context: 0, output: 1 } }, {})).code).toBe(
      ErrorCode.INVALID_MODEL,
    );
  });

  it("rejects keys that cannot travel in an environment variable, without echoing them", () => {
    const error = errorOf(() => resolveModel({ provider: "openai", model: "gpt-5", apiKey: "line\nbreak-secret" }, {}));
    expect(error.code).toBe(ErrorCode.INVALID_MODEL);
    expect(error.message).not.toContain("break-secret");
    for (const bad of ['quote"secret', "back\\slash", "tab\tsecret"]) {
      expect(errorOf(() => resolveModel({ provider: "openai", model: "gpt-5", apiKey: bad }, {})).code).toBe(ErrorCode.INVALID_MODEL);
    }
    expect(resolveModel({ provider: "openai", model: "gpt-5", apiKey: "sk-proj_AZaz09-._~+/=" }, {}).apiKey).toBe("sk-proj_AZaz09-._~+/=");
  });
});
