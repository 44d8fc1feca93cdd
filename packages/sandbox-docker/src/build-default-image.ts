import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { abortedError, agentError, ErrorCode, RunningAgentError } from "@running-agent/core";
import type Dockerode from "dockerode";
import * as tar from "tar-stream";
import { DEFAULT_BASE_IMAGE, DEFAULT_IMAGE, OPENCODE_VERSION } from "./default-image.js";
import { describeEndpoint, resolveDockerClient, type DockerConnection } from "./docker-client.js";
import { engineMessage, engineStatus, engineUnavailableError } from "./engine-error.js";
import { findOpencodeBinary } from "./opencode-binary.js";

/** Options of {@link buildDefaultImage}. */
export interface BuildDefaultImageOptions {
  /** The Engine (as in createDockerSandbox). Default: dockerode's defaults (DOCKER_HOST). */
  docker?: DockerConnection;
  /** The image to build FROM. Default `debian:bookworm-slim` (needs Docker Hub); offline, a local Debian image with git and ca-certificates. */
  baseImage?: string;
  /** The tag to build. Default {@link DEFAULT_IMAGE}. */
  tag?: string;
  /**
   * Let the Engine pull a base image that is not on it (default true). With false, a missing base
   * fails at once with SANDBOX_IMAGE_BUILD_FAILED, nothing goes to a registry, and the build's
   * steps run without a network (offline CI; the base must already have git and CA certificates).
   */
  pullBaseImage?: boolean;
  /** Build even when the tag exists. Default false: an existing tag is reused. */
  force?: boolean;
  /** The OpenCode Linux binary to copy in. Default: the one from this package's `opencode-ai` dependency, for the engine's architecture. */
  opencodeBinaryPath?: string;
  /** Called with each line of the build's output. */
  onProgress?: (line: string) => void;
  /** Stops the build when aborted; the call then rejects with an `ABORTED` error. */
  signal?: AbortSignal;
}

/** What {@link buildDefaultImage} did. */
export interface BuildDefaultImageResult {
  /** The image's tag, to pass as the sandbox's `image`. */
  tag: string;
  /** False when the tag existed and was reused. */
  built: boolean;
  /** The image id. */
  imageId: string;
}

/**
 * Builds the package's default sandbox image (docker/Dockerfile) through the Engine API: the
 * context is the Dockerfile plus the OpenCode binary from npm, so nothing is downloaded when the
 * base image is local. Skips the build when the tag already exists.
 */
export async function buildDefaultImage(options: BuildDefaultImageOptions = {}): Promise<BuildDefaultImageResult> {
  const docker = resolveDockerClient(options.docker);
  const tag = options.tag ?? DEFAULT_IMAGE;
  const baseImage = options.baseImage ?? DEFAULT_BASE_IMAGE;
  for (const [name, value] of [["tag", tag], ["baseImage", baseImage]] as const) {
    if (typeof value !== "string" || value.trim() === "" || /\s/.test(value)) {
      throw agentError(ErrorCode.INVALID_OPTIONS, `buildDefaultImage ${name} must be an image reference without spaces, got ${JSON.stringify(value)}.`);
    }
  }

  if (!options.force) {
    const existing = await inspectImage(docker, tag);
    if (existing) return { tag, built: false, imageId: existing };
  }
  if (options.signal?.aborted) throw abortedError(options.signal);
  if (options.pullBaseImage === false && !(await inspectImage(docker, baseImage))) {
    throw agentError(
      ErrorCode.SANDBOX_IMAGE_BUILD_FAILED,
      `The base image ${baseImage} is not on the engine. Pull it, or build a local Debian base offline with scripts/docker-base-image.sh (debootstrap) and pass it as baseImage.`,
      { details: { tag, baseImage } },
    );
  }

  let architecture: string;
  try {
    architecture = (await docker.version()).Arch;
  } catch (error) {
    throw engineUnavailableError(error, describeEndpoint(docker));
  }
  const binary = options.opencodeBinaryPath ?? (await findOpencodeBinary(architecture));
  const dockerfile = await readFile(new URL("../docker/Dockerfile", import.meta.url));
  const context = await buildContext(dockerfile, binary);

  const lines: string[] = [];
  try {
    const output = await docker.buildImage(context, {
      t: tag,
      buildargs: { BASE_IMAGE: baseImage, OPENCODE_VERSION },
      rm: true,
      forcerm: true,
      // Offline builds run their steps without a network: nothing can leave the machine.
      ...(options.pullBaseImage === false ? { networkmode: "none" } : {}),
      ...(options.signal ? { abortSignal: options.signal } : {}),
    });
    await new Promise<void>((resolve, reject) => {
      docker.modem.followProgress(
        output,
        (error: Error | null, events: BuildEvent[]) => {
          const failed = events.find((event) => event.error || event.errorDetail);
          if (error) reject(error);
          else if (failed) reject(new Error(failed.errorDetail?.message ?? failed.error));
          else resolve();
        },
        (event: BuildEvent) => {
          const line = (event.stream ?? event.status ?? "").trimEnd();
          if (!line) return;
          lines.push(line);
          if (lines.length > 40) lines.shift();
          options.onProgress?.(line);
        },
      );
    });
  } catch (error) {
    if (options.signal?.aborted) throw abortedError(options.signal);
    if (RunningAgentError.isInstance(error)) throw error;
    const message = engineMessage(error);
    const hint = /pull access denied|not found|no such image|repository does not exist/i.test(message)
      ? ` The base image ${baseImage} is not on the engine: pull it, or pass baseImage with a local Debian image (offline: scripts/docker-base-image.sh builds one with debootstrap).`
      : "";
    throw agentError(ErrorCode.SANDBOX_IMAGE_BUILD_FAILED, `Building ${tag} from ${baseImage} failed: ${message}.${hint}`, {
      cause: error,
      details: { tag, baseImage, lastLines: lines.slice(-10) },
    });
  }
  const imageId = await inspectImage(docker, tag);
  if (!imageId) throw agentError(ErrorCode.SANDBOX_IMAGE_BUILD_FAILED, `The build of ${tag} ended without an image.`, { details: { lastLines: lines.slice(-10) } });
  return { tag, built: true, imageId };
}

interface BuildEvent {
  stream?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
}

async function inspectImage(docker: Dockerode, tag: string): Promise<string | undefined> {
  try {
    return (await docker.getImage(tag).inspect()).Id;
  } catch (error) {
    if (engineStatus(error) === 404) return undefined;
    if (engineStatus(error) === undefined) throw engineUnavailableError(error, describeEndpoint(docker));
    throw agentError(ErrorCode.SANDBOX_IMAGE_BUILD_FAILED, `Could not inspect image ${tag}: ${engineMessage(error)}`, { cause: error });
  }
}

/** The build context as a tar stream: the Dockerfile and the binary (streamed from disk, it is large). */
async function buildContext(dockerfile: Buffer, binaryPath: string): Promise<tar.Pack> {
  const size = (await stat(binaryPath)).size;
  const pack = tar.pack();
  pack.entry({ name: "Dockerfile", mode: 0o644, size: dockerfile.length }, dockerfile);
  const entry = pack.entry({ name: "opencode", mode: 0o755, size }, (error) => {
    if (error) pack.destroy(error);
    else pack.finalize();
  });
  createReadStream(binaryPath)
    .on("error", (error) => pack.destroy(error))
    .pipe(entry);
  return pack;
}
