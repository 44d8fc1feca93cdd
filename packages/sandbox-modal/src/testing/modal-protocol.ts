import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { compileFunction } from "node:vm";

/** One method of a ts-proto generated service definition, as nice-grpc reads it. */
export interface ModalMethodDefinition {
  /** The method's name as in the `.proto` file, such as `SandboxCreate`. */
  name: string;
  /** The generated codec of the request message. */
  requestType: {
    /** Builds a full message from a partial object, filling defaults. */
    fromPartial(value: unknown): unknown;
    /** Starts encoding a message to protobuf wire format. */
    encode(value: unknown): {
      /** Ends the encoding and returns the message's bytes. */
      finish(): Uint8Array;
    };
  };
  /** Whether the client sends a stream of requests. */
  requestStream: boolean;
  /** The generated codec of the response message. */
  responseType: {
    /** Builds a full message from a partial object, filling defaults. */
    fromPartial(value: unknown): unknown;
  };
  /** Whether the server answers with a stream of responses. */
  responseStream: boolean;
  /** The method's `.proto` options, as ts-proto emitted them. */
  options: Record<string, unknown>;
}

/** A ts-proto generated service definition. */
export interface ModalServiceDefinition {
  /** The service's short name, such as `ModalClient`. */
  name: string;
  /** The service's name with its protobuf package, such as `modal.client.ModalClient`. */
  fullName: string;
  /** The service's methods, keyed by their camel-case name (`sandboxCreate`). */
  methods: Record<string, ModalMethodDefinition>;
}

/** The generated definitions the local server answers with. */
export interface ModalProtocol {
  /** The SDK version the definitions were read from. */
  sdkVersion: string;
  /** `modal.client.ModalClient`: the control plane. */
  modalClient: ModalServiceDefinition;
  /** `modal.task_command_router.TaskCommandRouter`: the service a sandbox's task exposes for exec. */
  taskCommandRouter: ModalServiceDefinition;
}

let cached: ModalProtocol | undefined;

/**
 * Loads the service definitions that ts-proto generated inside the `modal` SDK package, so that the
 * local server and the official client share one definition (service names, method names, field
 * numbers, encoders).
 *
 * The package's `exports` map only exposes its public API, and the generated definitions are
 * module-private variables of its bundle. We therefore evaluate the package's own CommonJS bundle
 * once more, as a function, with one statement appended that hands those two variables out. Nothing
 * of the SDK is copied: the code that runs is the installed package file.
 */
export function loadModalProtocol(): ModalProtocol {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  // `require.resolve("modal")` gives the CommonJS bundle, `<package>/dist/index.cjs`.
  const bundlePath = require.resolve("modal");
  const packageDirectory = dirname(dirname(bundlePath));
  const packageJsonPath = join(packageDirectory, "package.json");
  const packageJson = JSON.parse(readFileSync(packageJsonPath, "utf8")) as { version: string };
  const source = readFileSync(bundlePath, "utf8");
  const bundle = compileFunction(
    `${source}\n;module.exports.__generatedDefinitions = { ModalClientDefinition, TaskCommandRouterDefinition };`,
    ["exports", "require", "module", "__filename", "__dirname"],
    { filename: bundlePath },
  );
  const module = { exports: {} as Record<string, unknown> };
  bundle(module.exports, createRequire(bundlePath), module, bundlePath, dirname(bundlePath));
  const definitions = module.exports.__generatedDefinitions as {
    ModalClientDefinition: ModalServiceDefinition;
    TaskCommandRouterDefinition: ModalServiceDefinition;
  };
  cached = {
    sdkVersion: packageJson.version,
    modalClient: definitions.ModalClientDefinition,
    taskCommandRouter: definitions.TaskCommandRouterDefinition,
  };
  return cached;
}

/**
 * A copy of a definition that holds only the named methods, so that the gRPC server answers every
 * other method of the service with UNIMPLEMENTED (grpc-js does that for unregistered paths).
 */
export function definitionWithMethods(definition: ModalServiceDefinition, methodNames: string[]): ModalServiceDefinition {
  const methods: Record<string, ModalMethodDefinition> = {};
  for (const methodName of methodNames) {
    const method = definition.methods[methodName];
    if (!method) throw new Error(`The SDK's ${definition.fullName} has no method ${methodName}.`);
    methods[methodName] = method;
  }
  return { ...definition, methods };
}
