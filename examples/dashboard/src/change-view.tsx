import { useEffect, useMemo, useState } from "react";
import { Diff, Hunk, parseDiff } from "react-diff-view";
import "react-diff-view/style/index.css";
import type { JobResultView } from "@running-agent/example-http-api/job-views";
import { ApiError, type ApiClient } from "./api-client.js";

/** The job's change: branch, commit, the changed files, and the commit's diff (read by the server from the pushed branch). */
export function ChangeView({ client, result }: { client: ApiClient; result: JobResultView }) {
  const [diff, setDiff] = useState<string | undefined>();
  const [error, setError] = useState<string | undefined>();
  const hasCommit = Boolean(result.branch && result.commit);

  useEffect(() => {
    if (!hasCommit) return;
    let current = true;
    client.diff(result.job_id).then(
      (text) => current && setDiff(text),
      (caught: unknown) => current && setError(caught instanceof ApiError ? caught.message : "The diff could not be loaded."),
    );
    return () => {
      current = false;
    };
  }, [client, result.job_id, hasCommit]);

  const files = useMemo(() => (diff ? parseDiff(diff, { nearbySequences: "zip" }) : []), [diff]);
  if (result.changes.length === 0 && !hasCommit) return null;
  return (
    <section className="change" aria-labelledby={`change-${result.job_id}`}>
      <h3 id={`change-${result.job_id}`}>Change</h3>
      {hasCommit && (
        <dl className="facts">
          <dt>Branch</dt>
          <dd data-testid="branch">
            <code>{result.branch}</code>
            {result.base_branch ? (
              <>
                {" "}
                → <code>{result.base_branch}</code>
              </>
            ) : null}
          </dd>
          <dt>Commit</dt>
          <dd data-testid="commit">
            <code title={result.commit ?? undefined}>{result.commit?.slice(0, 12)}</code>
          </dd>
        </dl>
      )}
      <ul className="changed-files" aria-label="Changed files">
        {result.changes.map((change) => (
          <li key={change.path}>
            <span className={`file-status file-${change.status}`}>{change.status}</span> <code>{change.path}</code>
          </li>
        ))}
      </ul>
      {error && <p className="error">{error}</p>}
      {hasCommit && !diff && !error && <p className="muted">Loading the diff…</p>}
      <div className="diff-files" data-testid="diff">
        {files.map((file) => (
          <figure key={`${file.oldPath}→${file.newPath}`} className="diff-file">
            <figcaption>
              <code>{file.type === "rename" ? `${file.oldPath} → ${file.newPath}` : file.type === "delete" ? file.oldPath : file.newPath}</code> <span className="muted">{file.type}</span>
            </figcaption>
            {file.hunks.length > 0 ? (
              <Diff viewType="unified" diffType={file.type} hunks={file.hunks}>
                {(hunks) => hunks.map((hunk) => <Hunk key={hunk.content} hunk={hunk} />)}
              </Diff>
            ) : (
              <p className="muted">No text changes (binary or mode only).</p>
            )}
          </figure>
        ))}
      </div>
    </section>
  );
}
