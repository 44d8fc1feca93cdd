import { describe, expect, it } from "vitest";
import { loadServerConfig } from "./server-config.js";

describe("loadServerConfig", () => {
  it("defaults to the embedded local parts and the offline model", () => {
    expect(loadServerConfig({})).toMatchObject({
      host: "127.0.0.1",
      port: 8787,
      apiKey: undefined,
      concurrency: 2,
      bodyLimitBytes: 65536,
      sandbox: "local",
      gitHost: "local",
      model: "scripted",
    });
  });

  it("uses core's default model when GEMINI_API_KEY is set, and an explicit model over both", () => {
    expect(loadServerConfig({ GEMINI_API_KEY: "g" }).model).toBeUndefined();
    expect(loadServerConfig({ GEMINI_API_KEY: "g", RUNNING_AGENT_MODEL: "anthropic/claude-sonnet-4-5" }).model).toBe("anthropic/claude-sonnet-4-5");
  });

  it("treats empty variables as unset and reads the rest", () => {
    const config = loadServerConfig({ PORT: "", RUNNING_AGENT_API_KEY: "", RUNNING_AGENT_CONCURRENCY: "4", RUNNING_AGENT_GIT_HOST: "github", GITHUB_API_URL: "http://127.0.0.1:9/api/v3" });
    expect(config).toMatchObject({ port: 8787, apiKey: undefined, concurrency: 4, gitHost: "github", github: { apiUrl: "http://127.0.0.1:9/api/v3" } });
  });

  it("reads the sandbox pool's size and idle time (none by default)", () => {
    expect(loadServerConfig({}).pool).toEqual({ size: 0, idleTimeoutMs: undefined });
    expect(loadServerConfig({ RUNNING_AGENT_POOL_SIZE: "2", RUNNING_AGENT_POOL_IDLE_MS: "60000" }).pool).toEqual({ size: 2, idleTimeoutMs: 60_000 });
    expect(() => loadServerConfig({ RUNNING_AGENT_POOL_SIZE: "-1" })).toThrow(/RUNNING_AGENT_POOL_SIZE: .*at least 0/);
    expect(() => loadServerConfig({ RUNNING_AGENT_POOL_SIZE: "100" })).toThrow(/RUNNING_AGENT_POOL_SIZE: .*at most 32/);
  });

  it("names every bad variable", () => {
    expect(() =>
      loadServerConfig({ PORT: "eighty", RUNNING_AGENT_CONCURRENCY: "0", RUNNING_AGENT_SANDBOX: "podman", RUNNING_AGENT_API_KEY: "short", GITHUB_API_URL: "not a url" }),
    ).toThrow(
      /PORT: PORT must be a number.*RUNNING_AGENT_API_KEY: .*at least 8.*RUNNING_AGENT_CONCURRENCY: .*at least 1.*RUNNING_AGENT_SANDBOX: RUNNING_AGENT_SANDBOX must be local, local-unisolated or docker\..*GITHUB_API_URL: GITHUB_API_URL must be a URL/,
    );
  });

  it("reads the Docker sandbox's image and network, and refuses the scripted model without host networking", () => {
    expect(loadServerConfig({ RUNNING_AGENT_SANDBOX: "docker", RUNNING_AGENT_DOCKER_NETWORK: "host" })).toMatchObject({ sandbox: "docker", docker: { image: undefined, network: "host" } });
    expect(loadServerConfig({ RUNNING_AGENT_SANDBOX: "docker", RUNNING_AGENT_MODEL: "google/gemini-2.5-pro", RUNNING_AGENT_DOCKER_IMAGE: "my/image:1", RUNNING_AGENT_DOCKER_NETWORK: "egress-filtered" }).docker).toEqual({
      image: "my/image:1",
      network: { name: "egress-filtered" },
    });
    expect(() => loadServerConfig({ RUNNING_AGENT_SANDBOX: "docker" })).toThrow(/RUNNING_AGENT_DOCKER_NETWORK: the scripted model listens on this machine's loopback.*RUNNING_AGENT_DOCKER_NETWORK=host/);
    expect(() => loadServerConfig({ RUNNING_AGENT_SANDBOX: "docker", RUNNING_AGENT_DOCKER_NETWORK: "--privileged" })).toThrow(/must be bridge, host, none or the name of a Docker network/);
  });
});
