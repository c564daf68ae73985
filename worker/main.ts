import { existsSync } from 'node:fs';
import { Client } from '@temporalio/client';
import type { Logger } from '@temporalio/common';
import { Runtime } from '@temporalio/worker';
import { githubCommitDates } from '../client/delivery-records';
import { CatalogueError, loadCatalogue, type Catalogue } from '../common/catalogue';
import { loadWorkerSettings, SettingsError, type WorkerSettings } from '../common/settings';
import { createProductionDependencies } from './adapters';
import { DEFAULT_BUNDLE_PATH } from './bundle-workflows';
import { createDeployWorker } from './create-worker';
import { createJsonLogger, secretValuesFrom } from './logging';
import { publishDeliveryMetrics } from './delivery-metrics';
import { connectWorker, type WorkerConnection } from './temporal-connection';
import { installRuntime, loadTelemetrySettings, type TelemetrySettings } from './telemetry';

/** The worker process: validate everything first, then poll the task queue until SIGINT/SIGTERM. */
async function main(secrets: string[], useLogger: (logger: Logger) => void): Promise<void> {
  const telemetry = loadTelemetrySettings();
  const logger = createJsonLogger({ level: telemetry.logLevel, secrets });
  useLogger(logger);
  // Before anything touches the SDK runtime: the first use would install a default one.
  installRuntime(telemetry, logger);

  const settings = loadWorkerSettings();
  const catalogue = loadCatalogue(settings.cataloguePath);
  const temporal = await connectWorker(logger);
  const { connection, namespace } = temporal;
  const workflowBundlePath = settings.workflowBundlePath ?? (existsSync(DEFAULT_BUNDLE_PATH) ? DEFAULT_BUNDLE_PATH : undefined);
  if (!workflowBundlePath) logger.warn('no prebundled workflow code found (run "npm run build"); bundling at start-up');
  const worker = await createDeployWorker({
    connection,
    namespace,
    taskQueue: settings.taskQueue,
    dependencies: createProductionDependencies(settings, catalogue),
    workflowBundlePath,
    maxCachedWorkflows: settings.maxCachedWorkflows,
    maxConcurrentActivities: settings.maxConcurrentActivities,
  });
  logger.info('deploy worker polling', {
    taskQueue: settings.taskQueue,
    maxCachedWorkflows: settings.maxCachedWorkflows,
    namespace: namespace ?? 'default',
    temporalAddress: temporal.address,
    apps: catalogue.apps.size,
    catalogue: catalogue.file,
    metricsAddress: telemetry.metricsAddress ?? null,
  });
  // The delivery metrics are read from Temporal only where metrics are exported.
  const delivery = telemetry.metricsAddress ? startDeliveryMetrics(temporal, settings, catalogue, telemetry, logger) : undefined;
  try {
    await worker.run();
  } finally {
    await delivery?.stop();
    await temporal.close();
  }
}

/** Over the worker's own connection, so the metrics read with the worker's token (renewed from its file, if any). */
function startDeliveryMetrics(temporal: WorkerConnection, settings: WorkerSettings, catalogue: Catalogue, telemetry: TelemetrySettings, logger: Logger): { stop(): Promise<void> } {
  const publisher = publishDeliveryMetrics({
    client: new Client({ connection: temporal.connection, namespace: temporal.namespace }),
    meter: Runtime.instance().metricMeter,
    catalogue,
    taskQueue: settings.taskQueue,
    intervalMs: telemetry.deliveryMetricsIntervalMs,
    commitDates: githubCommitDates(settings.github),
    logger,
  });
  return publisher;
}

const secrets = secretValuesFrom(process.env);
// Until the log level is known (a bad one is itself a start-up error), log at INFO.
let logger: Logger = createJsonLogger({ level: 'INFO', secrets });
// Node prints warnings (deprecations, libraries' notices) as plain text; they become log lines like any other.
process.removeAllListeners('warning');
process.on('warning', (warning) => logger.warn(warning.message, { warning: warning.name }));

main(secrets, (configured) => (logger = configured)).then(
  () => logger.info('deploy worker stopped'),
  (err: unknown) => {
    if (err instanceof SettingsError || err instanceof CatalogueError) {
      logger.error(`deploy worker: ${err.message}`);
      process.exit(2);
    }
    logger.error('deploy worker failed', { error: err });
    process.exit(1);
  },
);
