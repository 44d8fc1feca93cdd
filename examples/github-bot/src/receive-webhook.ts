import type { IncomingMessage, ServerResponse } from "node:http";
import type { EmitterWebhookEvent, Webhooks } from "@octokit/webhooks";

/** GitHub caps webhook payloads at 25 MB. */
export const MAX_BODY_BYTES = 25 * 1024 * 1024;

/**
 * Answers one webhook request: 404 for another path, 405 for a method other than POST, 415
 * without JSON, 413 when too large, 401 when the `X-Hub-Signature-256` signature is missing or
 * does not match the secret (nothing is dispatched then), 400 for a malformed delivery, and 202
 * with what the bot decided once the event's handlers have run.
 */
export async function receiveWebhook(
  webhooks: Webhooks,
  request: IncomingMessage,
  response: ServerResponse,
  options: { path: string; decisionFor: (deliveryId: string) => string },
): Promise<void> {
  const pathname = new URL(request.url ?? "/", "http://localhost").pathname.replace(/\/+$/, "") || "/";
  if (pathname !== options.path) return send(response, 404, { error: `Not found: ${pathname}. Webhooks go to ${options.path}.` });
  if (request.method !== "POST") return send(response, 405, { error: "Webhooks are POSTed." }, { allow: "POST" });
  if (!/^application\/json\s*(;|$)/i.test(request.headers["content-type"] ?? "")) {
    return send(response, 415, { error: 'The webhook content type must be "application/json".' });
  }
  const body = await readBody(request);
  if (body === undefined) return send(response, 413, { error: `The payload is larger than ${MAX_BODY_BYTES} bytes.` });
  const signature = header(request, "x-hub-signature-256");
  if (!signature || !(await webhooks.verify(body, signature).catch(() => false))) {
    return send(response, 401, { error: "The signature (X-Hub-Signature-256) is missing or does not match the webhook secret." });
  }
  const name = header(request, "x-github-event");
  const id = header(request, "x-github-delivery");
  if (!name || !id) return send(response, 400, { error: "X-GitHub-Event and X-GitHub-Delivery are required." });
  let payload: unknown;
  try {
    payload = JSON.parse(body);
  } catch {
    return send(response, 400, { error: "The payload is not valid JSON." });
  }
  if (name === "ping") return send(response, 200, { result: "pong" });
  await webhooks.receive({ id, name, payload } as EmitterWebhookEvent);
  send(response, 202, { result: options.decisionFor(id) });
}

export function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The body as text, or undefined when it exceeds the limit (the rest is drained, not kept). */
export function readBody(request: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    request.on("end", () => resolve(size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks).toString("utf8")));
    request.on("error", reject);
  });
}

export function send(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { "content-type": "application/json", ...headers });
  response.end(`${JSON.stringify(body)}\n`);
}
