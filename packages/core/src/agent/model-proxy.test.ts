import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { resolveModel } from "./model-resolution.js";
import { startModelProxy, type ModelProxy } from "./model-proxy.js";

const KEY = "real-model-key-0123456789";

/** An upstream that records what reached it and streams two chunks back. */
async function startUpstream(): Promise<{ url: string; seen: Array<{ path: string; headers: IncomingHttpHeaders; body: string }>; close(): Promise<void> }> {
  const seen: Array<{ path: string; headers: IncomingHttpHeaders; body: string }> = [];
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      seen.push({ path: request.url ?? "", headers: request.headers, body });
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.write("data: one\n\n");
      setTimeout(() => response.end("data: two\n\n"), 20);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe("startModelProxy", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setUp(provider: "openai-compatible" | "anthropic" | "google"): Promise<{ proxy: ModelProxy; upstream: Awaited<ReturnType<typeof startUpstream>> }> {
    const upstream = await startUpstream();
    cleanups.push(upstream.close);
    const model = resolveModel({ provider, model: "m-1", apiKey: KEY, baseURL: `${upstream.url}/v9` });
    const proxy = await startModelProxy(model);
    cleanups.push(proxy.close);
    return { proxy, upstream };
  }

  it("refuses a request without the run's token, and forwards nothing", async () => {
    const { proxy, upstream } = await setUp("openai-compatible");
    const response = await fetch(`${proxy.url}/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${KEY}` }, body: "{}" });
    expect(response.status).toBe(401);
    expect(upstream.seen).toEqual([]);
  });

  it.each([
    ["openai-compatible", "authorization", `Bearer ${KEY}`],
    ["anthropic", "x-api-key", KEY],
    ["google", "x-goog-api-key", KEY],
  ] as const)("for %s, swaps the token for the key in the provider's own header and streams the answer back", async (provider, header, value) => {
    const { proxy, upstream } = await setUp(provider);
    expect(proxy.sandboxModel.apiKey).toBe(proxy.token);
    expect(proxy.sandboxModel.opencodeProvider.options.baseURL).toBe(proxy.url);
    const tokenHeader = header === "authorization" ? `Bearer ${proxy.token}` : proxy.token;
    const response = await fetch(`${proxy.url}/chat/completions?alt=sse`, { method: "POST", headers: { [header]: tokenHeader, "content-type": "application/json" }, body: '{"x":1}' });
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("data: one\n\ndata: two\n\n");
    expect(upstream.seen).toHaveLength(1);
    expect(upstream.seen[0]!.path).toBe("/v9/chat/completions?alt=sse");
    expect(upstream.seen[0]!.headers[header]).toBe(value);
    expect(upstream.seen[0]!.body).toBe('{"x":1}');
    expect(JSON.stringify(upstream.seen[0]!.headers)).not.toContain(proxy.token);
  });

  it("answers 502 with a message when the model's API cannot be reached", async () => {
    const model = resolveModel({ provider: "openai-compatible", model: "m-1", apiKey: KEY, baseURL: "http://127.0.0.1:9/v1" });
    const proxy = await startModelProxy(model);
    cleanups.push(proxy.close);
    const response = await fetch(`${proxy.url}/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${proxy.token}` }, body: "{}" });
    expect(response.status).toBe(502);
    expect(await response.text()).toContain("could not reach");
  });
});
