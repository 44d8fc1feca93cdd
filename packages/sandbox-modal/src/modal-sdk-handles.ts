/**
 * A `ModalClient` from the `modal` package, as this package's public types name it: by a few of
 * its members, not by modal's own class. modal's declarations import `@bufbuild/protobuf/wire`,
 * which modal does not depend on, so an app that type-checks without `skipLibCheck` fails on
 * every declaration that reaches them. Pass a `new ModalClient(...)`; cast back to `ModalClient`
 * to use the rest of the SDK.
 */
export interface ModalClientHandle {
  /** The SDK's app service. */
  readonly apps: object;
  /** The SDK's image service. */
  readonly images: object;
  /** The SDK's sandbox service. */
  readonly sandboxes: object;
  /** The SDK's secret service. */
  readonly secrets: object;
}

/**
 * A `Sandbox` from the `modal` package, named by its id for the reason given at
 * {@link ModalClientHandle}; cast to `Sandbox` for the SDK's own calls.
 */
export interface ModalSandboxHandle {
  /** Modal's sandbox id (`sb-…`). */
  readonly sandboxId: string;
}
