import { randomUUID } from "node:crypto";
import { testMovedBase } from "@running-agent/core/testing";
import { createDockerPreparedStateCache, PREPARED_CACHE_LABEL } from "./docker-prepared-state-cache.js";
import { docker, expectNoContainers, scopedProvider } from "./test-engine.js";

// Host networking, so that the servers reach the scripted model on loopback.
let run = "";
testMovedBase({
  name: "Docker (committed images)",
  provider: () => {
    const cache = createDockerPreparedStateCache({ name: `test-${randomUUID().slice(0, 8)}` });
    const scoped = scopedProvider({ network: "host", preparedStates: cache });
    run = scoped.run;
    return {
      provider: scoped.provider,
      close: async () => {
        await cache.close();
        await expectNoContainers(run);
      },
    };
  },
  // Started from a state: the container's image is one of the cache's committed images.
  startedFromState: async (containerId) => {
    const image = await docker.getImage((await docker.getContainer(containerId).inspect()).Image).inspect();
    return image.Config?.Labels?.[PREPARED_CACHE_LABEL] !== undefined;
  },
});
