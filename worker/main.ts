import { existsSync } from 'node:fs';
import { NativeConnection } from '@temporalio/worker';
import { CatalogueError, loadCatalogue } from '../common/catalogue';
import { loadWorkerSettings, SettingsError, temporalConnectConfig } from '../common/settings';
import { createProductionDependencies } from './adapters';
import { DEFAULT_BUNDLE_PATH } from './bundle-workflows';
import { createDeployWorker } from './create-worker';

/** The worker process: validate everything first, then poll the task queue until SIGINT/SIGTERM. */
async function main(): Promise<void> {
  const settings = loadWorkerSettings();
  const catalogue = loadCatalogue(settings.cataloguePath);
  const { connectionOptions, namespace } = temporalConnectConfig();
  const connection = await NativeConnection.connect(connectionOptions);
  const workflowBundlePath = settings.workflowBundlePath ?? (existsSync(DEFAULT_BUNDLE_PATH) ? DEFAULT_BUNDLE_PATH : undefined);
  if (!workflowBundlePath) console.error('no prebundled workflow code found (run "npm run build"); bundling at start-up');
  const worker = await createDeployWorker({
    connection,
    namespace,
    taskQueue: settings.taskQueue,
    dependencies: createProductionDependencies(settings, catalogue),
    workflowBundlePath,
  });
  console.error(
    `worker polling task queue "${settings.taskQueue}" in namespace "${namespace ?? 'default'}" at ${connectionOptions.address}; ${catalogue.apps.size} apps from ${catalogue.file}`,
  );
  try {
    await worker.run();
  } finally {
    await connection.close();
  }
}

main().catch((err: unknown) => {
  if (err instanceof SettingsError || err instanceof CatalogueError) {
    console.error(`deploy worker: ${err.message}`);
    process.exit(2);
  }
  console.error(`deploy worker: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
