/** TCP ports for the servers the sandbox, the bench and the tests start: free ones to pick, and a check that a chosen one is free. */
import { createServer } from 'node:net';

/**
 * Ports we pick come from below Linux's ephemeral range (32768-60999). The OS hands out ports from that range to
 * every `listen(0)` and outgoing connection, the Temporal CLI's dev server included (for its inner services), so
 * a port chosen there and released may be taken by someone else before our server binds it.
 */
const PICKED_PORTS = { from: 15_000, to: 32_000 };

function bindable(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** A TCP port on `host` that nothing listens on now, outside the range the OS gives to others. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = PICKED_PORTS.from + Math.floor(Math.random() * (PICKED_PORTS.to - PICKED_PORTS.from));
    if (await bindable(port, host)) return port;
  }
  throw new Error(`no free TCP port on ${host} between ${PICKED_PORTS.from} and ${PICKED_PORTS.to} after 200 tries`);
}

/** `count` distinct free ports on `host`, for servers started one after another later. */
export async function freePorts(host: string, count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort(host));
  return [...ports];
}

export class PortTakenError extends Error {
  constructor(
    readonly port: number,
    message: string,
  ) {
    super(message);
    this.name = 'PortTakenError';
  }
}

/** Resolves when nothing listens on host:port; rejects with PortTakenError (carrying `message`) otherwise. */
export function ensurePortFree(host: string, port: number, message: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE' || err.code === 'EACCES' ? new PortTakenError(port, message) : err);
    });
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve()));
  });
}
