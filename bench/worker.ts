/**
 * The bench's worker process: the production worker's settings, adapters and options (worker/main.ts,
 * worker/create-worker.ts), with the baseline's no-op activities added and the bench's bundle, which holds
 * the product's workflows and the baseline. Started by bench/main.ts, compiled, as a child with an IPC channel.
 *
 * Environment, besides the worker's own settings: BENCH_WORKFLOW_BUNDLE (required) and BENCH_ARGO_REFRESH=off,
 * which drops the pipeline's refresh requests so that only Argo CD's own polling notices a charts commit, and
 * BENCH_CALL_LOG, where every step's call is logged (bench/call-log.ts).
 */
import { NativeConnection, Worker } from '@temporalio/worker';
import { loadCatalogue } from '../common/catalogue';
import type { ArgoCd } from '../common/ports';
import { loadWorkerSettings, temporalConnectConfig } from '../common/settings';
import { createProductionDependencies } from '../worker/adapters';
import { deployWorkerOptions } from '../worker/create-worker';
import { benchActivities } from './activities';
import { callLogInterceptor } from './call-log';

export interface WorkerMessage {
  ready?: true;
  error?: string;
}

function send(message: WorkerMessage): void {
  process.send?.(message);
}

async function main(): Promise<void> {
  const bundle = process.env.BENCH_WORKFLOW_BUNDLE;
  if (!bundle) throw new Error('BENCH_WORKFLOW_BUNDLE is not set');
  const settings = loadWorkerSettings();
  const catalogue = loadCatalogue(settings.cataloguePath);
  const { connectionOptions, namespace } = temporalConnectConfig();
  const connection = await NativeConnection.connect(connectionOptions);
  let dependencies = createProductionDependencies(settings, catalogue);
  if (process.env.BENCH_ARGO_REFRESH === 'off') {
    // Every Argo CD the worker may ask: the default one and each cluster's own.
    const withoutRefresh = (argoCd: ArgoCd): ArgoCd => ({ getApplication: (name) => argoCd.getApplication(name) });
    const { argoCd, argoCdOf } = dependencies;
    dependencies = { ...dependencies, argoCd: withoutRefresh(argoCd), ...(argoCdOf ? { argoCdOf: (argocd) => withoutRefresh(argoCdOf(argocd)) } : {}) };
  }
  const options = deployWorkerOptions({
    connection,
    namespace,
    taskQueue: settings.taskQueue,
    dependencies,
    workflowBundlePath: bundle,
    maxCachedWorkflows: settings.maxCachedWorkflows,
    ...(process.env.BENCH_CALL_LOG ? { activityInterceptors: [callLogInterceptor(process.env.BENCH_CALL_LOG)] } : {}),
  });
  const worker = await Worker.create({ ...options, activities: { ...(options.activities ?? {}), ...benchActivities } });
  const stop = () => worker.shutdown();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  // The bench going away (even killed) closes the channel: this worker must not outlive it.
  process.once('disconnect', () => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
  });
  const running = worker.run();
  send({ ready: true });
  try {
    await running;
  } finally {
    await connection.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
    console.error(`bench worker failed: ${message}`);
    send({ error: message });
    process.exit(1);
  },
);
