/**
 * The OpenCode version baked into the default image; the same as this package's `opencode-ai` dependency
 * (a test keeps them in step). That dependency stays exact, not a caret range: the binary copied into the
 * image must be this release, which the image tag names.
 */
export const OPENCODE_VERSION = "1.18.33";

/** The default sandbox image's tag. It names the OpenCode version, so a version bump builds a new image. */
export const DEFAULT_IMAGE = `running-agent/sandbox:opencode-${OPENCODE_VERSION}`;

/** Where the default image puts the OpenCode binary (also on PATH). */
export const DEFAULT_IMAGE_OPENCODE_PATH = "/usr/local/bin/opencode";

/** The base image the Dockerfile builds from when none is given (needs Docker Hub). */
export const DEFAULT_BASE_IMAGE = "debian:bookworm-slim";
