/** One server-sent event as a test reads it. */
export interface ReceivedServerSentEvent {
  id: string | undefined;
  event: string;
  data: any;
}

/**
 * Reads a server-sent event stream with fetch until `until` says stop or the server ends it.
 * Returns every event received. `onOpen` is called once the server has answered with the stream's headers.
 */
export async function readServerSentEvents(
  url: string,
  options: { headers?: Record<string, string>; onOpen?: () => void; until?: (event: ReceivedServerSentEvent, all: ReceivedServerSentEvent[]) => boolean; onEvent?: (event: ReceivedServerSentEvent) => void } = {},
): Promise<ReceivedServerSentEvent[]> {
  const controller = new AbortController();
  const response = await fetch(url, { headers: { accept: "text/event-stream", ...options.headers }, signal: controller.signal });
  if (response.status !== 200 || !response.body) throw new Error(`SSE request failed: ${response.status} ${await response.text()}`);
  // The server subscribes before it sends the headers, so from here on nothing is missed.
  options.onOpen?.();
  const received: ReceivedServerSentEvent[] = [];
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for await (const chunk of response.body) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      let boundary: number;
      while ((boundary = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, boundary);
        buffer = buffer.slice(boundary + 2);
        const fields = { id: undefined as string | undefined, event: "message", data: [] as string[] };
        for (const line of block.split("\n")) {
          if (line.startsWith(":") || line.length === 0) continue;
          const colon = line.indexOf(":");
          const name = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (name === "id") fields.id = value;
          else if (name === "event") fields.event = value;
          else if (name === "data") fields.data.push(value);
        }
        if (fields.data.length === 0) continue;
        const event: ReceivedServerSentEvent = { id: fields.id, event: fields.event, data: JSON.parse(fields.data.join("\n")) };
        received.push(event);
        options.onEvent?.(event);
        if (options.until?.(event, received)) {
          controller.abort();
          return received;
        }
      }
    }
  } catch (error) {
    if (!controller.signal.aborted) throw error;
  }
  return received;
}
