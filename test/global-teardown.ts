/** Jest global teardown: stops the Temporal dev server and moto started by test/global-setup.ts. */
import { testGlobals } from './global-setup';

export default async function globalTeardown(): Promise<void> {
  const globals = testGlobals();
  const { env, moto } = globals;
  if (moto && moto.exitCode === null && moto.signalCode === null) {
    const exited = new Promise<void>((resolve) => moto.once('exit', () => resolve()));
    moto.kill('SIGTERM');
    const timer = setTimeout(() => moto.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
  if (env) {
    await env.teardown();
  }
  globals.env = undefined;
  globals.moto = undefined;
}
