import { useEffect, useRef, useState } from "react";
import { logLinesOf, type JobResultView, type JobStatusView } from "@running-agent/example-http-api/job-views";
import { ApiError, type ApiClient } from "./api-client.js";
import { StatusBadge } from "./status-badge.js";
import { useJobStream } from "./use-job-stream.js";

/** One job: its live log, its pull request once open, and cancel or retry. */
export function JobDetail({ client, job, onRetried }: { client: ApiClient; job: JobStatusView; onRetried: (jobId: string) => void }) {
  const stream = useJobStream(client.eventsUrl(job.job_id));
  const [result, setResult] = useState<JobResultView | undefined>();
  const [actionError, setActionError] = useState<string | undefined>();
  const logRef = useRef<HTMLPreElement>(null);
  const status = stream.status ?? job;
  const finished = !["queued", "running"].includes(status.status);

  useEffect(() => {
    setResult(undefined);
    setActionError(undefined);
  }, [job.job_id]);

  useEffect(() => {
    if (!finished) return;
    let current = true;
    client.result(job.job_id).then(
      (loaded) => current && setResult(loaded),
      () => undefined,
    );
    return () => {
      current = false;
    };
  }, [client, job.job_id, finished]);

  const lines = logLinesOf(stream.events);
  useEffect(() => {
    logRef.current?.scrollTo({ top: logRef.current.scrollHeight });
  }, [lines.length]);

  async function act(action: "cancel" | "retry") {
    setActionError(undefined);
    try {
      const answer = action === "cancel" ? await client.cancel(job.job_id) : await client.retry(job.job_id);
      if (action === "retry") onRetried(answer.job_id);
    } catch (caught) {
      setActionError(caught instanceof ApiError ? caught.message : "The API could not be reached.");
    }
  }

  const prUrl = status.pr_url ?? result?.pr_url;
  return (
    <section className="panel job-detail" data-job-id={job.job_id}>
      <header>
        <h2>{job.task}</h2>
        <StatusBadge status={status.status} />
      </header>
      <p className="job-meta">
        {job.repo_url} · job {job.job_id}
        {status.phase && !finished ? ` · phase ${status.phase}` : ""}
        {stream.reconnecting ? " · reconnecting…" : ""}
      </p>
      {prUrl && (
        <p className="pull-request">
          Pull request:{" "}
          <a href={prUrl} target="_blank" rel="noreferrer" data-testid="pr-link">
            {prUrl}
          </a>
        </p>
      )}
      {status.error && (
        <p className="error">
          {status.error.code}
          {status.error.phase ? ` in ${status.error.phase}` : ""}: {status.error.message}
        </p>
      )}
      {result && result.changes.length > 0 && (
        <p className="changes">
          Changed: {result.changes.map((change) => `${change.path} (${change.status})`).join(", ")}
          {result.timings.total !== undefined ? ` · ${(result.timings.total / 1000).toFixed(1)} s` : ""}
        </p>
      )}
      <div className="actions">
        {!finished && (
          <button type="button" onClick={() => act("cancel")}>
            Cancel
          </button>
        )}
        {["failed", "cancelled", "interrupted"].includes(status.status) && !status.retried_by && (
          <button type="button" onClick={() => act("retry")}>
            Retry
          </button>
        )}
      </div>
      {actionError && <p className="error">{actionError}</p>}
      <pre className="log" ref={logRef} data-testid="job-log">
        {lines.length > 0 ? lines.join("\n") : "Waiting for events…"}
      </pre>
    </section>
  );
}
