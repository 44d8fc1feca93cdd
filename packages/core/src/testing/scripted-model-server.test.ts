import { afterEach, describe, expect, it } from "vitest";
import { startScriptedModelServer, type ScriptedModelServer } from "./scripted-model-server.js";

/** Reads a server-sent event stream to its end and returns the `data:` payloads. */
async function readEvents(response: Response): Promise<string[]> {
  const text = await response.text();
  return text
    .split("\n\n")
    .filter((block) => block.trim() !== "")
    .map((block) => {
      expect(block.startsWith("data: ")).toBe(true);
      return block.slice("data: ".length);
    });
}

/** Folds OpenAI streaming chunks into what a client would build from them. */
function foldChunks(payloads: string[]) {
  expect(payloads.at(-1)).toBe("[DONE]");
  const chunks = payloads.slice(0, -1).map((payload) => JSON.parse(payload));
  let role: string | undefined;
  let content = "";
  let finishReason: string | undefined;
  let usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | undefined;
  const calls: Array<{ id: string; name: string; arguments: string }> = [];
  for (const chunk of chunks) {
    expect(chunk.object).toBe("chat.completion.chunk");
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      role ??= choice.delta.role;
      if (choice.delta.content) content += choice.delta.content;
      if (choice.finish_reason) finishReason = choice.finish_reason;
      for (const call of choice.delta.tool_calls ?? []) {
        if (call.id) calls[call.index] = { id: call.id, name: call.function.name, arguments: call.function.arguments ?? "" };
        else calls[call.index]!.arguments += call.function.arguments;
      }
    }
  }
  return { role, content, finishReason, usage, calls, chunkCount: chunks.length };
}

function chat(server: ScriptedModelServer, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${server.url}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ model: "scripted-model", messages: [{ role: "user", content: "hi" }], ...body }),
  });
}

describe("startScriptedModelServer", () => {
  let server: ScriptedModelServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it("streams tool calls the way OpenAI does: role, id and name, argument deltas, finish reason, usage, [DONE]", async () => {
    server = await startScriptedModelServer({
      script: [
        {
          toolCalls: [
            { name: "write", arguments: { filePath: "src/a.ts", content: "export const a = 1;\n".repeat(5) } },
            { name: "bash", arguments: { command: "ls -la" }, id: "call_fixed" },
          ],
        },
      ],
    });
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    const response = await chat(server, { stream: true, stream_options: { include_usage: true } });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    const folded = foldChunks(await readEvents(response));
    expect(folded.role).toBe("assistant");
    expect(folded.finishReason).toBe("tool_calls");
    expect(folded.calls).toHaveLength(2);
    expect(folded.calls[0]!.name).toBe("write");
    expect(folded.calls[0]!.id).toMatch(/^call_/);
    expect(JSON.parse(folded.calls[0]!.arguments)).toEqual({ filePath: "src/a.ts", content: "export const a = 1;\n".repeat(5) });
    expect(folded.calls[1]).toEqual({ id: "call_fixed", name: "bash", arguments: JSON.stringify({ command: "ls -la" }) });
    // Arguments arrive in several deltas, as real models send them.
    expect(folded.chunkCount).toBeGreaterThan(6);
    expect(folded.usage!.prompt_tokens).toBeGreaterThan(0);
    expect(folded.usage!.completion_tokens).toBeGreaterThan(0);
    expect(folded.usage!.total_tokens).toBe(folded.usage!.prompt_tokens + folded.usage!.completion_tokens);
  });

  it("streams text in several deltas, keeps characters outside the BMP whole, and reports given usage", async () => {
    const text = "Changed the README and added 🚀 tests for every module in the project.";
    server = await startScriptedModelServer({ script: [{ text, usage: { promptTokens: 1234, completionTokens: 56 } }] });
    const folded = foldChunks(await readEvents(await chat(server, { stream: true })));
    expect(folded.content).toBe(text);
    expect(folded.finishReason).toBe("stop");
    expect(folded.chunkCount).toBeGreaterThan(3);
    expect(folded.usage).toEqual({ prompt_tokens: 1234, completion_tokens: 56, total_tokens: 1290 });
  });

  it("answers a request without stream as one JSON completion", async () => {
    server = await startScriptedModelServer({ script: [{ toolCalls: [{ name: "read", arguments: { filePath: "x" } }], text: "Reading." }] });
    const body: any = await (await chat(server, {})).json();
    expect(body.object).toBe("chat.completion");
    expect(body.choices[0].message.content).toBe("Reading.");
    expect(body.choices[0].message.tool_calls[0].function).toEqual({ name: "read", arguments: '{"filePath":"x"}' });
    expect(body.choices[0].finish_reason).toBe("tool_calls");
    expect(body.usage.prompt_tokens).toBeGreaterThan(0);
  });

  it("records every request, counts played turns, and answers 'Done.' once the script has run out", async () => {
    server = await startScriptedModelServer({ script: [{ text: "first" }] });
    await (await chat(server, { stream: true, messages: [{ role: "user", content: "one" }] }, { "x-session-id": "s1" })).text();
    expect(server.turnsPlayed).toBe(1);
    const after = foldChunks(await readEvents(await chat(server, { stream: true, messages: [{ role: "user", content: "two" }] })));
    expect(after.content).toBe("Done.");
    expect(server.turnsPlayed).toBe(1);
    expect(server.chatRequests).toHaveLength(2);
    expect(server.chatRequests[0]!.headers["x-session-id"]).toBe("s1");
    expect(server.chatRequests[0]!.body.messages[0].content).toBe("one");
    expect(server.chatRequests[1]!.body.messages[0].content).toBe("two");
    expect(server.chatRequests.map((request) => request.turnIndex)).toEqual([0, 1]);
  });

  it("plays a function turn with the request it answers", async () => {
    server = await startScriptedModelServer({
      script: [(request) => ({ text: `You said: ${request.body.messages.at(-1).content}` })],
    });
    const folded = foldChunks(await readEvents(await chat(server, { stream: true, messages: [{ role: "user", content: "ping" }] })));
    expect(folded.content).toBe("You said: ping");
  });

  it("answers scripted HTTP errors with their body and headers, then goes on with the script", async () => {
    server = await startScriptedModelServer({
      script: [
        { status: 500 },
        { status: 429, headers: { "retry-after": "7" }, body: { error: { message: "slow down", type: "rate_limit" } } },
        { status: 400, body: "plain words" },
        { text: "recovered" },
      ],
    });
    const first = await chat(server, { stream: true });
    expect(first.status).toBe(500);
    expect(((await first.json()) as any).error.type).toBe("server_error");
    const second = await chat(server, { stream: true });
    expect(second.status).toBe(429);
    expect(second.headers.get("retry-after")).toBe("7");
    expect(((await second.json()) as any).error.message).toBe("slow down");
    const third = await chat(server, { stream: true });
    expect(third.status).toBe(400);
    expect(await third.text()).toBe("plain words");
    expect(foldChunks(await readEvents(await chat(server, { stream: true }))).content).toBe("recovered");
    expect(server.turnsPlayed).toBe(4);
  });

  it("repeats afterScript forever, e.g. a model that always fails", async () => {
    server = await startScriptedModelServer({ afterScript: { status: 503 } });
    for (let attempt = 0; attempt < 3; attempt += 1) expect((await chat(server, { stream: true })).status).toBe(503);
    expect(server.turnsPlayed).toBe(0);
  });

  it("checks the bearer key when one is set, recording rejected requests too", async () => {
    server = await startScriptedModelServer({ apiKey: "right-key", script: [{ text: "ok" }] });
    const wrong = await chat(server, { stream: true }, { authorization: "Bearer wrong-key" });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as any).error.code).toBe("invalid_api_key");
    expect((await chat(server, { stream: true })).status).toBe(401);
    // Rejected requests do not use up turns.
    expect(server.turnsPlayed).toBe(0);
    const right = await chat(server, { stream: true }, { authorization: "Bearer right-key" });
    expect(right.status).toBe(200);
    expect(foldChunks(await readEvents(right)).content).toBe("ok");
    expect(server.requests).toHaveLength(3);
    expect(server.chatRequests).toHaveLength(1);
  });

  it("lists its models and answers unknown routes with 404", async () => {
    server = await startScriptedModelServer({ models: ["a-model", "b-model"] });
    const models: any = await (await fetch(`${server.url}/models`)).json();
    expect(models.data.map((model: { id: string }) => model.id)).toEqual(["a-model", "b-model"]);
    expect((await fetch(`${server.url}/embeddings`, { method: "POST", body: "{}" })).status).toBe(404);
  });

  it("answers after delayMs, streaming slowly with chunkDelayMs", async () => {
    server = await startScriptedModelServer({ script: [{ text: "slow answer", delayMs: 50, chunkDelayMs: 10 }] });
    const folded = foldChunks(await readEvents(await chat(server, { stream: true })));
    expect(folded.content).toBe("slow answer");
  });

  it("hangs when told to, and close() ends hanging requests and stops listening (idempotently)", async () => {
    server = await startScriptedModelServer({ script: [{ hang: true }] });
    const pending = chat(server, { stream: true }).then(
      () => "answered",
      () => "failed",
    );
    await server.waitForChatRequests(1, { timeoutMs: 5000 });
    const raced = await Promise.race([pending, new Promise((resolve) => setTimeout(() => resolve("still waiting"), 200))]);
    expect(raced).toBe("still waiting");
    await server.close();
    expect(await pending).toBe("failed");
    await server.close();
    await expect(fetch(`${server.url}/models`)).rejects.toThrow();
  });

  it("waitForChatRequests rejects after its timeout", async () => {
    server = await startScriptedModelServer();
    await expect(server.waitForChatRequests(1, { timeoutMs: 20 })).rejects.toThrow(/Timed out waiting for 1 chat requests/);
  });

  it("waitForChatRequests rejects when the server closes first", async () => {
    const closing = await startScriptedModelServer();
    const waiting = closing.waitForChatRequests(1);
    await closing.close();
    await expect(waiting).rejects.toThrow(/closed before 1 chat requests arrived/);
    await expect(closing.waitForChatRequests(1)).rejects.toThrow(/closed/);
  });

  it("works with await using", async () => {
    let url: string;
    {
      await using disposable = await startScriptedModelServer();
      url = disposable.url;
      expect((await fetch(`${url}/models`)).status).toBe(200);
    }
    await expect(fetch(`${url}/models`)).rejects.toThrow();
  });
});
