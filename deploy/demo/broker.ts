import { createServer, type AddressInfo, type Server } from "node:net";
import { Aedes } from "aedes";
import type { Logger } from "@datalab/shared";

export interface EmbeddedBroker {
  /** Where clients connect: mqtt://127.0.0.1:<port>. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * An MQTT broker in this process (aedes), for a desktop with no Mosquitto. It listens on
 * loopback only: a demo should not open a broker without authentication to the network.
 * It takes the port of the configured DATALAB_MQTT_URL, so sensors pointed at that address
 * reach it; if that port is taken, any free one (printed in the banner).
 * Messages are not persisted: the gateway commits each one to its outbox on arrival.
 */
export async function startEmbeddedBroker(preferredPort: number, logger: Logger): Promise<EmbeddedBroker> {
  const aedes = await Aedes.createBroker();
  aedes.on("clientError", (client, err) => logger.debug({ client: client.id, err: err.message }, "mqtt client error"));
  const server = createServer(aedes.handle);
  const port = await listen(server, preferredPort).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "EADDRINUSE" && err.code !== "EACCES") throw err;
    logger.warn({ port: preferredPort, err: err.code }, "port taken; the embedded broker listens on a free one");
    return listen(server, 0);
  });
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        // aedes closes its clients; the server then stops accepting and closes.
        aedes.close(() => server.close(() => resolve()));
      }),
  };
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once("error", onError);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
