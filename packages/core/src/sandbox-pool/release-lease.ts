import type { PooledSandboxLease } from "./sandbox-pool.js";

/** What a task's teardown does with a lease (for the pool's tests, which take leases by hand). */
export async function releaseLease(lease: PooledSandboxLease | undefined): Promise<void> {
  if (!lease) return;
  await lease.server.process.kill();
  await lease.session.destroy();
  await lease.modelProxy?.close();
  await lease.egressProxy?.close();
}
