// The offline model moved to core's offline kit, so that the jobs package's worker processes use it too.
export { startOfflineModel, OFFLINE_NOTE_FILE, type OfflineModel } from "@running-agent/core/offline";
