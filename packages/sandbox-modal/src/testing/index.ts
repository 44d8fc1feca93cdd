export {
  IMPLEMENTED_COMMAND_ROUTER_METHODS,
  IMPLEMENTED_CONTROL_PLANE_METHODS,
  startModalServer,
  type LocalImageRecord,
  type LocalSandboxRecord,
  type ModalServer,
  type ModalServerFailure,
  type ModalServerOptions,
} from "./modal-server.js";
export { loadModalProtocol, type ModalMethodDefinition, type ModalProtocol, type ModalServiceDefinition } from "./modal-protocol.js";
