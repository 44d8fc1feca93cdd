import { startModelProxy, type ModelProxy } from "../agent/model-proxy.js";
import type { ResolvedModel } from "../agent/model-resolution.js";
import type { SandboxCreateOptions, SandboxNetworkPolicy, SandboxProvider } from "../spec/sandbox-spec.js";
import { startEgressProxy, type BlockedConnection, type EgressProxy } from "./egress-proxy.js";

/** How one sandbox reaches the world and the model: what the host runs for it and what goes into it. */
export interface SandboxAccess {
  /** The egress proxy, where the provider enforces the policy through it. */
  egressProxy?: EgressProxy;
  /** The loopback model proxy, where the key stays on the host without an egress proxy. */
  modelProxy?: ModelProxy;
  /** The model as OpenCode inside must see it. */
  sandboxModel: ResolvedModel;
  /** What goes into the sandbox as the model's key: a run token when the key stays on the host. */
  sandboxKey: string | undefined;
  /** The run token, to be redacted, when there is one. */
  token: string | undefined;
  /** The create options this adds: the policy and the proxy's socket. */
  createOptions: Pick<SandboxCreateOptions, "network" | "egressProxy">;
  close(): Promise<void>;
}

/**
 * Starts what the sandbox's network needs on the host: for providers that enforce the policy through
 * the egress proxy, one proxy (which also serves the model, with the key added here when `keyOnHost`);
 * otherwise a loopback model proxy when `keyOnHost`, or nothing.
 */
export async function openSandboxAccess(input: {
  provider: SandboxProvider;
  network: SandboxNetworkPolicy;
  model: ResolvedModel;
  keyOnHost: boolean;
  onBlocked?: (blocked: BlockedConnection) => void;
}): Promise<SandboxAccess> {
  const { provider, network, model, keyOnHost } = input;
  if (provider.egressProxy === true && network !== "open") {
    const egressProxy = await startEgressProxy({ policy: network, model, keyOnHost, ...(input.onBlocked ? { onBlocked: input.onBlocked } : {}) });
    const token = keyOnHost ? egressProxy.modelRoute!.token : undefined;
    return {
      egressProxy,
      sandboxModel: egressProxy.sandboxModel!,
      sandboxKey: keyOnHost ? token : model.apiKey,
      token,
      createOptions: { network, egressProxy: { socketPath: egressProxy.socketPath } },
      close: () => egressProxy.close(),
    };
  }
  if (keyOnHost) {
    const modelProxy = await startModelProxy(model);
    return { modelProxy, sandboxModel: modelProxy.sandboxModel, sandboxKey: modelProxy.token, token: modelProxy.token, createOptions: { network }, close: () => modelProxy.close() };
  }
  return { sandboxModel: model, sandboxKey: model.apiKey, token: undefined, createOptions: { network }, close: async () => undefined };
}
