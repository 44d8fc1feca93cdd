import { testMovedBase } from "@running-agent/core/testing";
import { afterAll, beforeAll, expect } from "vitest";
import { createModalPreparedStateCache, createModalSandbox } from "./index.js";
import { startModalServer, type ModalServer } from "./testing/index.js";

let modal: ModalServer;
beforeAll(async () => {
  modal = await startModalServer();
});
afterAll(async () => {
  await modal?.close();
});

testMovedBase({
  name: "Modal (filesystem snapshots, local server)",
  provider: () => {
    const cache = createModalPreparedStateCache();
    return {
      provider: createModalSandbox({ serverUrl: modal.url, tokenId: modal.tokenId, tokenSecret: modal.tokenSecret, app: "moved-base", preparedStates: cache }),
      close: async () => {
        await cache.close();
        expect(modal.liveSandboxes()).toEqual([]);
      },
    };
  },
  // Started from a state: the sandbox was created from one of the cache's snapshots.
  startedFromState: async (sandboxId) => {
    const imageId = modal.sandboxes().find((record) => record.sandboxId === sandboxId)?.imageId;
    return modal.images().some((image) => image.imageId === imageId && image.snapshotOf !== undefined);
  },
});
