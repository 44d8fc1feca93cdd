import { useEffect, useState } from "react";
import type { ApiClient } from "./api-client.js";
import type { JobStatusView, StoredAgentEvent } from "@running-agent/example-http-api/job-views";

/** What a job's event stream has shown so far. */
export interface JobStream {
  /** As the API streams them: `agent.text` carries its delta (and `text` only now and then); `logLinesOf` assembles the text. */
  events: StoredAgentEvent[];
  status: JobStatusView | undefined;
  /** The server said the job has ended. */
  ended: boolean;
  /** The connection is down and the browser is retrying. */
  reconnecting: boolean;
}

/**
 * Follows `GET /jobs/{id}/events`. The server replays past events on connect and resumes after
 * Last-Event-ID on reconnects, so events are appended without duplicates; the stream is closed
 * once the server sends `end` (otherwise EventSource would reconnect forever).
 */
export function useJobStream(client: ApiClient, jobId: string): JobStream {
  const [stream, setStream] = useState<JobStream>({ events: [], status: undefined, ended: false, reconnecting: false });

  useEffect(() => {
    setStream({ events: [], status: undefined, ended: false, reconnecting: false });
    const source = client.openEvents(client.eventsUrl(jobId));
    let lastSeq = 0;
    source.addEventListener("agent-event", (message) => {
      const seq = Number(message.lastEventId);
      if (seq <= lastSeq) return;
      lastSeq = seq;
      const event = JSON.parse(message.data) as StoredAgentEvent;
      setStream((previous) => ({ ...previous, events: [...previous.events, event], reconnecting: false }));
    });
    source.addEventListener("status", (message) => {
      const status = JSON.parse(message.data) as JobStatusView;
      setStream((previous) => ({ ...previous, status, reconnecting: false }));
    });
    source.addEventListener("end", () => {
      source.close();
      setStream((previous) => ({ ...previous, ended: true }));
    });
    source.addEventListener("error", () => {
      if (source.readyState !== source.CLOSED) setStream((previous) => ({ ...previous, reconnecting: true }));
    });
    return () => source.close();
  }, [client, jobId]);

  return stream;
}
