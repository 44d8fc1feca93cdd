import { createLocalSandbox, type SandboxProvider } from "@running-agent/core";

/** The sandbox names `RUNNING_AGENT_SANDBOX` takes, as the http-api example reads them. */
export const SANDBOX_NAMES = ["local", "local-unisolated", "docker", "modal"] as const;

/**
 * The sandbox `main.ts` runs tasks in, chosen by the environment as the http-api example does:
 * `RUNNING_AGENT_SANDBOX` local (bubblewrap, the default), local-unisolated (also
 * `AGENT_UNISOLATED=1`), docker (`RUNNING_AGENT_DOCKER_IMAGE`, `RUNNING_AGENT_DOCKER_NETWORK`) or
 * modal (`RUNNING_AGENT_MODAL_APP`, `RUNNING_AGENT_MODAL_IMAGE`, credentials as the Modal SDK
 * reads them). Docker and Modal are loaded only when chosen, and validated at once, so that a
 * bot that cannot reach them stops at startup instead of failing every task.
 */
export async function sandboxFromEnvironment(env: NodeJS.ProcessEnv): Promise<{ provider: SandboxProvider; description: string }> {
  const name = env.RUNNING_AGENT_SANDBOX ?? (env.AGENT_UNISOLATED === "1" ? "local-unisolated" : "local");
  if (name === "local") return { provider: createLocalSandbox({ isolation: "bubblewrap" }), description: "local (bubblewrap)" };
  if (name === "local-unisolated") return { provider: createLocalSandbox({ isolation: "none" }), description: "local, NOT isolated" };
  if (name === "docker") {
    const { createDockerSandbox } = await import("@running-agent/sandbox-docker");
    const given = env.RUNNING_AGENT_DOCKER_NETWORK;
    const network = given === undefined || given === "bridge" || given === "host" || given === "none" ? (given ?? "bridge") : { name: given };
    const provider = createDockerSandbox({ ...(env.RUNNING_AGENT_DOCKER_IMAGE ? { image: env.RUNNING_AGENT_DOCKER_IMAGE } : {}), network });
    await provider.validate();
    return { provider, description: `docker (image ${provider.image}, network ${typeof network === "string" ? network : network.name})` };
  }
  if (name === "modal") {
    const { createModalSandbox } = await import("@running-agent/sandbox-modal");
    const image = env.RUNNING_AGENT_MODAL_IMAGE;
    const provider = createModalSandbox({ ...(env.RUNNING_AGENT_MODAL_APP ? { app: env.RUNNING_AGENT_MODAL_APP } : {}), ...(image ? { image: image.startsWith("im-") ? { imageId: image } : { registryTag: image } } : {}) });
    await provider.validate();
    return { provider, description: `modal (app ${env.RUNNING_AGENT_MODAL_APP ?? "running-agent"})` };
  }
  throw new TypeError(`RUNNING_AGENT_SANDBOX must be ${SANDBOX_NAMES.join(", ")}; it is "${name}".`);
}
