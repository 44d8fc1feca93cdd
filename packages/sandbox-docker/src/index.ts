export { createDockerSandbox, DockerSandboxProvider, MANAGED_LABEL, TASK_ID_LABEL, CREATED_AT_LABEL } from "./create-docker-sandbox.js";
export type { DockerSandboxSettings, DockerNetwork } from "./create-docker-sandbox.js";
export { DockerSandboxSession, type DockerSandboxSessionInit } from "./docker-sandbox-session.js";
export type { FileOwner } from "./tar-archive.js";
export type { PortPlan } from "./port-plan.js";
export type { DockerConnection } from "./docker-client.js";
export { DEFAULT_IMAGE, DEFAULT_BASE_IMAGE, DEFAULT_IMAGE_OPENCODE_PATH, OPENCODE_VERSION } from "./default-image.js";
export { buildDefaultImage } from "./build-default-image.js";
export type { BuildDefaultImageOptions, BuildDefaultImageResult } from "./build-default-image.js";
export {
  createDockerPreparedStateCache,
  DockerPreparedStateCache,
  PREPARED_STATE_LABEL,
  PREPARED_CACHE_LABEL,
  PREPARED_BASE_LABEL,
  PREPARED_AT_LABEL,
  PREPARED_IMAGE_REPOSITORY,
  type DockerPreparedStateCacheOptions,
  type PreparedBaseImage,
} from "./docker-prepared-state-cache.js";
