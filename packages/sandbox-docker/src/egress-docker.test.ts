import { readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { createLocalGitHost, runAgentTask, type AgentTaskEvent } from "@running-agent/core";
import { blockedRequests, createTestRepository, networkProbeScript, startLoopbackService, startScriptedModelServer, usePrivateTmpdir } from "@running-agent/core/testing";
import { describe, expect, it } from "vitest";
import { docker, expectNoContainers, scopedProvider } from "./test-engine.js";

// The default path with a local Engine: `none` networking, and the only ways out and in are Unix
// sockets bound into the container, with socat relays inside, to the host's egress proxy.
const API_KEY = "scripted-docker-egress-key";

describe("the Docker sandbox behind the egress proxy (the default with a local Engine)", () => {
  usePrivateTmpdir("running-agent-docker-egress-tmp-");

  it("runs the agent with the key on the host; the host's loopback is out of reach; refusals are events and in the PR body; nothing is left", async () => {
    await using service = await startLoopbackService();
    await using repo = await createTestRepository({ "README.md": "# demo\n" });
    const probe = networkProbeScript(
      [
        `git ls-remote ${service.url}/direct.git || echo direct-failed`,
        `env -u NO_PROXY -u no_proxy git ls-remote ${service.url}/proxied.git || echo proxied-failed`,
        `env -u NO_PROXY -u no_proxy git ls-remote http://localhost:${service.port}/rebound.git || echo rebinding-failed`,
        "git ls-remote https://10.1.2.3/private.git || echo private-literal-failed",
        "git ls-remote https://not-allowed.invalid/x.git || echo unknown-name-failed",
      ].join("; "),
    );
    await using model = await startScriptedModelServer({ apiKey: API_KEY, script: probe.script });
    // No egress setting: with this machine's Engine, enforcement is the default.
    const { provider, run } = scopedProvider({ network: "host" });
    expect(provider.egressProxy).toBe(true);
    const gitHost = createLocalGitHost();
    const events: AgentTaskEvent[] = [];
    let seen: Promise<{ networkMode: string | undefined; keyInEnv: boolean }> | undefined;
    const result = await runAgentTask({
      repo: repo.path,
      task: "Probe the network and write NOTES.md",
      model: { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: API_KEY },
      sandbox: provider,
      gitHost,
      // An allowed name that resolves to loopback (DNS rebinding) must still be refused.
      network: { allow: ["localhost"] },
      onEvent: (event) => {
        events.push(event);
        if (event.type === "sandbox") {
          seen = docker
            .getContainer(event.sandboxId)
            .inspect()
            .then((info) => ({ networkMode: info.HostConfig.NetworkMode, keyInEnv: info.Config.Env.some((entry) => entry.includes(API_KEY)) }));
        }
      },
    });

    expect(result.status).toBe("completed");
    expect(await repo.git("show", `${result.branch}:NOTES.md`)).toBe("probed\n");
    expect(await seen).toEqual({ networkMode: "none", keyInEnv: false });
    expect(model.chatRequests.every((request) => request.headers.authorization === `Bearer ${API_KEY}`)).toBe(true);
    for (const name of ["direct", "proxied", "rebinding", "private-literal", "unknown-name"]) expect(probe.toolOutput).toContain(`${name}-failed`);
    expect(service.requests).toBe(0);
    expect(blockedRequests(events)).toEqual([`GET 127.0.0.1:${service.port}`, `GET localhost:${service.port}`, "CONNECT 10.1.2.3:443", "CONNECT not-allowed.invalid:443"]);
    expect(events.find((event) => event.type === "network.blocked" && event.host === "localhost")).toMatchObject({ reason: expect.stringMatching(/resolves to .*loopback/) });
    const [changeRequest] = await gitHost.listChangeRequests(repo.path);
    expect(changeRequest!.body).toContain(`\`127.0.0.1:${service.port}\``);
    expect(changeRequest!.body).toContain("`not-allowed.invalid:443`");
    await expectNoContainers(run);
    // The socket folder and the proxy's folder are gone with the sandbox.
    expect(readdirSync(tmpdir()).filter((name) => name.startsWith("running-agent-") && !name.startsWith("running-agent-test-repo-"))).toEqual([]);
  });
});
