export { startApiServer, type ApiServer, type ApiServerOptions } from "./api-server.js";
export { JobQueue, JobRequestError, toApiJob, type JobStreamMessage, type JobSubmission } from "./job-queue.js";
export { StoredEventEncoder, type StoredAgentEvent, type StoredAgentTextEvent } from "@running-agent/jobs";
export * from "./job-record.js";
export * from "./job-views.js";
export { loadServerConfig, type ServerConfig } from "./server-config.js";
export { createTaskRuntime, type TaskRuntime } from "./task-runtime.js";
export { startOfflineModel, OFFLINE_NOTE_FILE, type OfflineModel } from "./offline-model.js";
