export { startPostgresCluster, postgresBinDirectory, type PostgresCluster } from "./postgres-cluster.js";
export { testJobStore, type JobStoreHarness } from "./job-store-conformance.js";
