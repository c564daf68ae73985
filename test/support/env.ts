/** Generic helpers for tests and the jest global setup: free ports and polling. */
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

/** Runs the call and returns what it threw, failing the test when it did not throw. */
export async function errorFrom(call: () => Promise<unknown>): Promise<Error> {
  try {
    await call();
  } catch (err) {
    expect(err).toBeInstanceOf(Error);
    return err as Error;
  }
  throw new Error('expected the call to fail');
}

/** A port nothing listens on. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface WaitForOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** Pause between attempts (default 100 ms). */
  intervalMs?: number;
  /** What is being waited for, for the timeout message (e.g. "moto server on port 5000 to answer"). */
  description?: string;
}

/**
 * Polls `predicate` until it returns a truthy value (which is returned), or throws a descriptive error
 * after `timeoutMs`. A predicate that throws counts as "not yet"; the last error is quoted on timeout.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 100, description = 'condition' }: WaitForOptions = {},
): Promise<NonNullable<T>> {
  const started = Date.now();
  let attempts = 0;
  let lastError: unknown;
  for (;;) {
    attempts++;
    try {
      const value = await predicate();
      if (value) return value as NonNullable<T>;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    const elapsed = Date.now() - started;
    if (elapsed >= timeoutMs) {
      const reason =
        lastError === undefined
          ? 'it stayed false'
          : `last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
      throw new Error(`timed out after ${elapsed} ms (${attempts} attempts) waiting for ${description}; ${reason}`);
    }
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, Math.max(0, timeoutMs - elapsed))));
  }
}
