export { createModalSandbox, ModalSandboxProvider } from "./modal-sandbox-provider.js";
export { ModalSandboxSession, type ModalSessionLayout } from "./modal-sandbox-session.js";
export {
  CREATED_TAG,
  DEFAULT_IMAGE,
  DEFAULT_OPENCODE_PATH,
  DEFAULT_OPENCODE_VERSION,
  MANAGED_TAG,
  TASK_TAG,
  type ModalImageSource,
  type ModalSandboxSettings,
} from "./modal-sandbox-settings.js";
export { createModalPreparedStateCache, ModalPreparedStateCache, type ModalPreparedStateCacheOptions } from "./modal-prepared-state-cache.js";
export type { ModalClientHandle, ModalSandboxHandle } from "./modal-sdk-handles.js";
