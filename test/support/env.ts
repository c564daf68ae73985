/** Generic helpers for tests: expected failures, closed ports and polling. (Free ports: harness/free-ports.ts.) */
import { createServer } from 'node:net';

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
