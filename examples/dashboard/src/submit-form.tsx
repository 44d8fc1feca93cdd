import { useState, type FormEvent } from "react";
import type { ServerConfigView } from "@running-agent/example-http-api/job-views";
import { ApiError, type ApiClient, type SubmitInput } from "./api-client.js";

/** The seed's submit form: a repository and a task; the advanced fields the server accepts (`GET /config`). */
export function SubmitForm({ client, config, onSubmitted }: { client: ApiClient; config: ServerConfigView | undefined; onSubmitted: (jobId: string) => void }) {
  const [repoUrl, setRepoUrl] = useState("");
  const [task, setTask] = useState("");
  const [baseBranch, setBaseBranch] = useState("");
  const [model, setModel] = useState("");
  const [draft, setDraft] = useState(false);
  const [labels, setLabels] = useState("");
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const accepted = config?.submit;
  const hasAdvanced = Boolean(accepted && (accepted.base_branch || accepted.draft || accepted.labels || accepted.models.length > 0));

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    const input: SubmitInput = { repo_url: repoUrl.trim(), task: task.trim() };
    if (accepted?.base_branch && baseBranch.trim()) input.base_branch = baseBranch.trim();
    if (accepted && accepted.models.length > 0 && model) input.model = model;
    if (accepted?.draft && draft) input.draft = true;
    const labelList = labels.split(",").map((label) => label.trim()).filter(Boolean);
    if (accepted?.labels && labelList.length > 0) input.labels = labelList;
    try {
      const { job_id: jobId } = await client.submit(input);
      setTask("");
      onSubmitted(jobId);
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.message : `Could not reach the API at ${client.baseUrl}.`);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="panel submit-form" onSubmit={submit} aria-labelledby="new-task-heading">
      <h2 id="new-task-heading">New task</h2>
      <label>
        Repository
        <input name="repo_url" value={repoUrl} onChange={(event) => setRepoUrl(event.target.value)} placeholder={config?.git_host.repo_url_example ?? ""} required aria-describedby="repo-hint" />
      </label>
      {config && (
        <p id="repo-hint" className="hint">
          This server's Git host: {config.git_host.description}
        </p>
      )}
      <label>
        Task
        <textarea name="task" value={task} onChange={(event) => setTask(event.target.value)} placeholder="Add unit tests for the utils module" rows={3} required />
      </label>
      {hasAdvanced && (
        <details className="advanced">
          <summary>Advanced</summary>
          {accepted?.base_branch && (
            <label>
              Base branch
              <input name="base_branch" value={baseBranch} onChange={(event) => setBaseBranch(event.target.value)} placeholder="the repository's default branch" />
            </label>
          )}
          {accepted && accepted.models.length > 0 && (
            <label>
              Model
              <select name="model" value={model} onChange={(event) => setModel(event.target.value)}>
                <option value="">the server's model</option>
                {accepted.models.map((name) => (
                  <option key={name} value={name}>
                    {name}
                  </option>
                ))}
              </select>
            </label>
          )}
          {accepted?.labels && (
            <label>
              Labels
              <input name="labels" value={labels} onChange={(event) => setLabels(event.target.value)} placeholder="comma-separated, e.g. agent, docs" />
            </label>
          )}
          {accepted?.draft && (
            <label className="checkbox">
              <input type="checkbox" name="draft" checked={draft} onChange={(event) => setDraft(event.target.checked)} />
              Open as a draft
            </label>
          )}
        </details>
      )}
      <button type="submit" disabled={busy}>
        {busy ? "Submitting…" : "Run agent"}
      </button>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
