/** Jest global teardown: stops the Temporal dev server and moto started by test/global-setup.ts. */
import { testGlobals } from './global-setup';

export default async function globalTeardown(): Promise<void> {
  const globals = testGlobals();
  await globals.moto?.child.stop(5_000);
  await globals.env?.teardown();
  globals.env = undefined;
  globals.moto = undefined;
}
