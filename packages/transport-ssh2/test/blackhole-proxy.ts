import { createServer, connect, type Server, type Socket } from "node:net";

/**
 * A loopback TCP relay that can start swallowing every byte in both directions without closing anything,
 * like a link that went dark. Used until `@tunnel/testing` ships its fault proxy.
 */
export interface BlackholeProxy {
  readonly port: number;
  blackhole(): void;
  close(): Promise<void>;
}

export async function startBlackholeProxy(target: { host: string; port: number }): Promise<BlackholeProxy> {
  let dark = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => sockets.delete(socket));
    }
    client.on("data", (chunk) => dark || upstream.write(chunk));
    upstream.on("data", (chunk) => dark || client.write(chunk));
    client.on("close", () => dark || upstream.destroy());
    upstream.on("close", () => dark || client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    port,
    blackhole: () => {
      dark = true;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
