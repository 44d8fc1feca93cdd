import Dockerode from "dockerode";

/** A Dockerode client, or the options to make one (socket, TCP with TLS, SSH). Absent: dockerode's defaults, which honour DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH. */
export type DockerConnection = Dockerode | Dockerode.DockerOptions;

/** Makes (or passes through) the client. Constructing Dockerode does no I/O. */
export function resolveDockerClient(connection: DockerConnection | undefined): Dockerode {
  if (connection instanceof Dockerode) return connection;
  // A client from another copy of dockerode (duplicate installs) is recognised by its shape.
  if (connection && typeof (connection as unknown as Dockerode).createContainer === "function") return connection as unknown as Dockerode;
  return new Dockerode(connection as Dockerode.DockerOptions | undefined);
}

/** Where the client talks to, for error messages (never includes credentials). */
export function describeEndpoint(docker: Dockerode): string {
  const modem = (docker as unknown as { modem?: { socketPath?: unknown; host?: string; port?: string | number; protocol?: string } }).modem;
  if (!modem) return "the configured Docker Engine";
  if (typeof modem.socketPath === "string") return `unix://${modem.socketPath}`;
  if (modem.host) return `${modem.protocol ?? "http"}://${modem.host}${modem.port ? `:${modem.port}` : ""}`;
  return "the configured Docker Engine";
}
