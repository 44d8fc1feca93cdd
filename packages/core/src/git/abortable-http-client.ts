import type { GitHttpRequest, GitHttpResponse, HttpClient } from "isomorphic-git";

/**
 * An isomorphic-git HTTP client on Node's fetch that honours an AbortSignal: aborting ends the
 * request and the response stream at once (isomorphic-git's bundled node client has no
 * cancellation, so an aborted clone would run on to its end).
 */
export function createAbortableHttpClient(signal?: AbortSignal): HttpClient {
  return {
    async request(request: GitHttpRequest): Promise<GitHttpResponse> {
      signal?.throwIfAborted();
      const body = request.body ? await collect(request.body) : undefined;
      const response = await fetch(request.url, {
        method: request.method ?? "GET",
        headers: request.headers ?? {},
        ...(body ? { body } : {}),
        redirect: "follow",
        ...(signal ? { signal } : {}),
      });
      const headers: Record<string, string> = {};
      response.headers.forEach((value, key) => {
        headers[key] = value;
      });
      return {
        url: response.url,
        method: request.method ?? "GET",
        statusCode: response.status,
        statusMessage: response.statusText,
        headers,
        body: response.body ? iterate(response.body) : emptyBody(),
      };
    },
  };
}

async function collect(body: AsyncIterableIterator<Uint8Array> | Uint8Array[] | Iterable<Uint8Array>): Promise<Uint8Array<ArrayBuffer>> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body as AsyncIterable<Uint8Array>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function* iterate(stream: ReadableStream<Uint8Array>): AsyncIterableIterator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

async function* emptyBody(): AsyncIterableIterator<Uint8Array> {}
