import type { GitHttpRequest, GitHttpResponse, HttpClient } from "isomorphic-git";
import type { RunningAgentError } from "../errors.js";
import { RemoteStallTimer, type RemoteStallTimerOptions } from "./remote-stall-timer.js";

/** Options for {@link createAbortableHttpClient}. */
export interface AbortableHttpClientOptions {
  signal?: AbortSignal;
  /** Fails each request that makes no progress for this long (see {@link RemoteStallTimer}). */
  stall?: RemoteStallTimerOptions;
}

/** An isomorphic-git HTTP client that can say whether the remote stalled. */
export interface AbortableHttpClient extends HttpClient {
  /**
   * The GIT_REMOTE_STALLED error when a request stalled. isomorphic-git reads a failed response
   * stream as its end, so the error it throws may say something else: check this first.
   */
  readonly stalled: RunningAgentError | undefined;
}

// Like git's http.postBuffer: larger bodies (a push's pack) are streamed, so each chunk the socket takes counts as progress.
const BUFFERED_BODY_LIMIT = 1024 * 1024;
const STREAMED_CHUNK_BYTES = 64 * 1024;

/**
 * An isomorphic-git HTTP client on Node's fetch that honours an AbortSignal: aborting ends the
 * request and the response stream at once (isomorphic-git's bundled node client has no
 * cancellation, so an aborted clone would run on to its end). With `stall`, a remote that
 * accepts and then sends or takes nothing fails the request with GIT_REMOTE_STALLED.
 */
export function createAbortableHttpClient(options: AbortableHttpClientOptions = {}): AbortableHttpClient {
  const { signal } = options;
  let stalled: RunningAgentError | undefined;
  return {
    get stalled() {
      return stalled;
    },
    async request(request: GitHttpRequest): Promise<GitHttpResponse> {
      signal?.throwIfAborted();
      const timer = options.stall ? new RemoteStallTimer(options.stall) : undefined;
      const noteStall = (error: unknown): unknown => {
        if (timer?.error) stalled ??= timer.error;
        return timer?.error ?? error;
      };
      const signals = [signal, timer?.signal].filter((each): each is AbortSignal => each !== undefined);
      const body = request.body ? await collect(request.body) : undefined;
      timer?.arm();
      let response: Response;
      try {
        response = await fetch(request.url, {
          method: request.method ?? "GET",
          headers: request.headers ?? {},
          ...(body ? (body.byteLength > BUFFERED_BODY_LIMIT ? { body: streamed(body, timer), duplex: "half" } : { body }) : {}),
          redirect: "follow",
          ...(signals.length > 0 ? { signal: AbortSignal.any(signals) } : {}),
        } as RequestInit);
      } catch (error) {
        throw noteStall(error);
      } finally {
        timer?.disarm();
      }
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
        body: response.body ? iterate(response.body, timer, noteStall) : emptyBody(),
      };
    },
  };
}

async function collect(body: AsyncIterableIterator<Uint8Array> | Uint8Array[] | Iterable<Uint8Array>): Promise<Uint8Array<ArrayBuffer>> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body as AsyncIterable<Uint8Array>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** The body in chunks pulled as the socket takes them; each pull is progress. */
function streamed(body: Uint8Array, timer: RemoteStallTimer | undefined): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        timer?.arm();
        if (offset >= body.byteLength) return controller.close();
        const end = Math.min(offset + STREAMED_CHUNK_BYTES, body.byteLength);
        controller.enqueue(body.subarray(offset, end));
        offset = end;
      },
    },
    { highWaterMark: 0 },
  );
}

async function* iterate(stream: ReadableStream<Uint8Array>, timer: RemoteStallTimer | undefined, noteStall: (error: unknown) => unknown): AsyncIterableIterator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      // Counted only while waiting for the remote, not while isomorphic-git works on a chunk.
      timer?.arm();
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (error) {
        throw noteStall(error);
      } finally {
        timer?.disarm();
      }
      if (chunk.done) return;
      yield chunk.value;
    }
  } finally {
    reader.releaseLock();
  }
}

async function* emptyBody(): AsyncIterableIterator<Uint8Array> {}
