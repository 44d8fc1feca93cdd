import { agentError, ErrorCode, RunningAgentError } from "@running-agent/core";

/** gRPC status codes the adapter tells apart (numbers from the gRPC spec, as nice-grpc reports them). */
const GRPC_STATUS = { NOT_FOUND: 5, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9, UNAVAILABLE: 14, UNAUTHENTICATED: 16 } as const;

interface GrpcLikeError {
  name: string;
  code: number;
  details?: string;
  message: string;
}

function isGrpcError(error: unknown): error is GrpcLikeError {
  return error instanceof Error && error.name === "ClientError" && typeof (error as { code?: unknown }).code === "number";
}

/**
 * Turns an error of the Modal SDK (its own error classes, or a gRPC ClientError that it passes
 * through) into the library's typed error. `fallback` is the code for anything unrecognised.
 */
export function modalError(error: unknown, fallback: ErrorCode, what: string): RunningAgentError {
  if (RunningAgentError.isInstance(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  const name = error instanceof Error ? error.name : "";
  if (isGrpcError(error)) {
    const details = error.details ?? message;
    switch (error.code) {
      case GRPC_STATUS.UNAUTHENTICATED:
      case GRPC_STATUS.PERMISSION_DENIED:
        return agentError(ErrorCode.AUTH_FAILED, `Modal rejected the token while trying to ${what}: ${details}. Check MODAL_TOKEN_ID and MODAL_TOKEN_SECRET.`, {
          cause: error,
          details: { grpcCode: error.code },
        });
      case GRPC_STATUS.RESOURCE_EXHAUSTED:
        return agentError(ErrorCode.SANDBOX_QUOTA_EXCEEDED, `Modal refused to ${what} for lack of quota or capacity: ${details}`, { cause: error });
      case GRPC_STATUS.UNAVAILABLE:
        return agentError(ErrorCode.SANDBOX_UNAVAILABLE, `Modal could not be reached to ${what}: ${details}`, { cause: error });
      case GRPC_STATUS.NOT_FOUND:
        return agentError(fallback, `Modal could not ${what}: ${details}`, { cause: error, details: { grpcCode: error.code } });
    }
    return agentError(fallback, `Modal could not ${what}: ${details}`, { cause: error, details: { grpcCode: error.code } });
  }
  if (name === "ResourceExhaustedError") return agentError(ErrorCode.SANDBOX_QUOTA_EXCEEDED, `Modal refused to ${what}: ${message}`, { cause: error });
  if (name === "SandboxTimeoutError") return agentError(ErrorCode.SANDBOX_PORT_UNAVAILABLE, `Modal's tunnel did not open in time to ${what}.`, { cause: error });
  if (name === "InvalidError") return agentError(ErrorCode.INVALID_OPTIONS, `Modal rejected the request to ${what}: ${message}`, { cause: error });
  if (name === "ClientClosedError") return agentError(ErrorCode.SANDBOX_DESTROYED, `The sandbox is closed; cannot ${what}.`, { cause: error });
  const build = /^Image build for (\S+) (failed with the exception:\n|terminated|timed out|failed with unknown status)([\s\S]*)$/.exec(message);
  if (build) {
    return agentError(ErrorCode.SANDBOX_IMAGE_BUILD_FAILED, `Modal could not build the sandbox image ${build[1]}:\n${build[3]!.trim()}`, {
      cause: error,
      details: { imageId: build[1], log: build[3]!.trim() },
    });
  }
  return agentError(fallback, `Modal could not ${what}: ${message}`, { cause: error });
}
