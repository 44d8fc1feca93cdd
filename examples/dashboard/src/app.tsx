import { useCallback, useEffect, useMemo, useState } from "react";
import type { JobStatusView } from "@running-agent/example-http-api/job-views";
import { ApiClient, apiUrlFromPage } from "./api-client.js";
import { JobDetail } from "./job-detail.js";
import { JobList } from "./job-list.js";
import { SubmitForm } from "./submit-form.js";

const API_KEY_STORAGE = "running-agent-api-key";

/** The dashboard: submit on the left, the live job list below it, the selected job on the right. */
export function App() {
  const [apiKey, setApiKey] = useState(() => window.localStorage.getItem(API_KEY_STORAGE) ?? "");
  const client = useMemo(() => new ApiClient(apiUrlFromPage(), apiKey), [apiKey]);
  const [jobs, setJobs] = useState<JobStatusView[]>([]);
  const [selectedId, setSelectedId] = useState<string | undefined>();
  const [offline, setOffline] = useState(false);

  const refresh = useCallback(async () => {
    try {
      setJobs(await client.listJobs());
      setOffline(false);
    } catch {
      setOffline(true);
    }
  }, [client]);

  // The list is re-read whenever the API reports a job's status change, and on every (re)connect,
  // so that nothing missed while disconnected stays stale.
  useEffect(() => {
    void refresh();
    const source = new EventSource(client.statusEventsUrl());
    source.addEventListener("open", () => void refresh());
    source.addEventListener("status", () => void refresh());
    source.addEventListener("error", () => setOffline(source.readyState !== EventSource.OPEN));
    return () => source.close();
  }, [client, refresh]);

  const select = (jobId: string) => {
    setSelectedId(jobId);
    void refresh();
  };
  const selected = jobs.find((job) => job.job_id === selectedId);

  return (
    <div className="app">
      <header className="app-header">
        <h1>Running Agent</h1>
        <span className={offline ? "api offline" : "api"}>{offline ? `API unreachable: ${client.baseUrl}` : client.baseUrl}</span>
        <label className="api-key">
          API key
          <input
            type="password"
            value={apiKey}
            onChange={(event) => {
              setApiKey(event.target.value);
              window.localStorage.setItem(API_KEY_STORAGE, event.target.value);
            }}
            placeholder="if the server needs one"
          />
        </label>
      </header>
      <main>
        <div className="column">
          <SubmitForm client={client} onSubmitted={select} />
          <JobList jobs={jobs} selectedId={selectedId} onSelect={select} />
        </div>
        <div className="column wide">
          {selected ? <JobDetail key={selected.job_id} client={client} job={selected} onRetried={select} /> : <p className="panel muted">Select a job to follow its log.</p>}
        </div>
      </main>
    </div>
  );
}
