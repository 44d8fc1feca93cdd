import { useEffect, useRef, useState } from "react";
import { logLinesOf, type JobResultView, type JobStatusView, type TokenUsageView } from "@running-agent/example-http-api/job-views";
import { ApiError, type ApiClient } from "./api-client.js";
import { ChangeView } from "./change-view.js";
import { formatDuration } from "./phase-steps.js";
import { PhaseStepper } from "./phase-stepper.js";
import { DraftBadge, StatusBadge } from "./status-badge.js";
import { useJobStream } from "./use-job-stream.js";

/** One job: its phases, its live log, its change and pull request once pushed, and cancel or retry. */
export function JobDetail({ client, job, phases, onRetried }: { client: ApiClient; job: JobStatusView; phases: readonly string[]; onRetried: (jobId: string) => void }) {
  const stream = useJobStream(client, job.job_id);
  const [result, setResult] = useState<JobResultView | undefined>();
  const [actionError, setActionError] = useState<string | undefined>();
  const logRef = useRef<HTMLPreElement>(null);
  const status = stream.status ?? job;
  const finished = !["queued", "running"].includes(status.status);

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
  const prDraft = status.pr_draft ?? result?.pull_request?.draft ?? false;
  return (
    <section className="panel job-detail" data-job-id={job.job_id} aria-labelledby={`task-${job.job_id}`}>
      <header>
        <h2 id={`task-${job.job_id}`}>{job.task}</h2>
        <StatusBadge status={status.status} />
        {prDraft && <DraftBadge />}
      </header>
      <p className="job-meta" data-testid="job-meta">
        {job.repo_url} · job {job.job_id}
        {job.user_id ? ` · ${job.user_id}` : ""}
        {status.phase && !finished ? ` · phase ${status.phase}` : ""}
        {stream.reconnecting ? " · reconnecting…" : ""}
      </p>
      {prUrl && <PullRequestLink url={prUrl} />}
      {status.error && (
        <p className="error">
          {status.error.code}
          {status.error.phase ? ` in ${status.error.phase}` : ""}: {status.error.message}
        </p>
      )}
      <div className="actions">
        {!finished && (
          <button type="button" onClick={() => act("cancel")}>
            Cancel
          </button>
        )}
        {status.retryable && (
          <button type="button" onClick={() => act("retry")}>
            Retry
          </button>
        )}
        {status.retried_by && (
          <a href={`/jobs/${status.retried_by}`} onClick={(event) => (event.preventDefault(), onRetried(status.retried_by!))}>
            Retried as job {status.retried_by.slice(0, 8)}
          </a>
        )}
      </div>
      {actionError && <p className="error">{actionError}</p>}
      {result?.summary && (
        <section className="summary" aria-labelledby={`summary-${job.job_id}`}>
          <h3 id={`summary-${job.job_id}`}>Summary</h3>
          <p data-testid="summary">{result.summary}</p>
        </section>
      )}
      <PhaseStepper phases={phases} events={stream.events} finished={finished} />
      {result && <Usage result={result} />}
      {result && <ChangeView client={client} result={result} />}
      <h3>Log</h3>
      <pre className="log" ref={logRef} data-testid="job-log" tabIndex={0} aria-label="Job log">
        {lines.length > 0 ? lines.join("\n") : "Waiting for events…"}
      </pre>
    </section>
  );
}

/** A pull request link; the local Git host's `local://` records open nowhere, so they are shown as text. */
function PullRequestLink({ url }: { url: string }) {
  if (url.startsWith("local://")) {
    return (
      <p className="pull-request" data-testid="pr-local">
        Change request recorded by the local Git host: <code>{url}</code> (no web page; its change is shown below)
      </p>
    );
  }
  return (
    <p className="pull-request">
      Pull request:{" "}
      <a href={url} target="_blank" rel="noreferrer" data-testid="pr-link">
        {url}
      </a>
    </p>
  );
}

/** Tokens, cost, model and time. */
function Usage({ result }: { result: JobResultView }) {
  const usage: TokenUsageView | null = result.usage;
  return (
    <dl className="facts usage" data-testid="usage">
      {result.model && (
        <>
          <dt>Model</dt>
          <dd>{result.model}</dd>
        </>
      )}
      {usage && (
        <>
          <dt>Tokens</dt>
          <dd>
            {usage.inputTokens.toLocaleString("en")} in · {usage.outputTokens.toLocaleString("en")} out
            {usage.reasoningTokens > 0 ? ` · ${usage.reasoningTokens.toLocaleString("en")} reasoning` : ""}
            {usage.cacheReadTokens > 0 ? ` · ${usage.cacheReadTokens.toLocaleString("en")} cached` : ""}
          </dd>
          <dt>Cost</dt>
          <dd>{usage.costSource === "unknown" ? "unknown" : `$${usage.cost.toFixed(4)}`}</dd>
        </>
      )}
      {result.agent_rounds.length > 1 && (
        <>
          <dt>Agent rounds</dt>
          <dd>{result.agent_rounds.length}</dd>
        </>
      )}
      {result.timings.total !== undefined && (
        <>
          <dt>Total time</dt>
          <dd>{formatDuration(result.timings.total)}</dd>
        </>
      )}
    </dl>
  );
}
