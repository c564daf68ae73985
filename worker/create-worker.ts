import { existsSync } from 'node:fs';
import { NativeConnection, Worker, type ActivityInterceptorsFactory, type WorkerOptions } from '@temporalio/worker';
import { stepMetricsInterceptor } from '../activities/metrics-interceptor';
import { createActivities, type ActivityDependencies } from '../activities';
import { DEFAULT_MAX_CONCURRENT_ACTIVITIES } from '../common/settings';
import { WORKFLOW_INTERCEPTOR_MODULES, WORKFLOWS_PATH } from './bundle-workflows';

export interface DeployWorkerOptions {
  connection: NativeConnection;
  namespace?: string;
  taskQueue: string;
  dependencies: ActivityDependencies;
  /** Prebundled workflow code (npm run build writes it); without it the worker bundles at start-up, which is slow. */
  workflowBundlePath?: string;
  maxCachedWorkflows?: number;
  maxConcurrentActivities?: number;
  /** Run inside the step metrics interceptor; for tests that need to act at a step's edge. */
  activityInterceptors?: ActivityInterceptorsFactory[];
}

export async function createDeployWorker(options: DeployWorkerOptions): Promise<Worker> {
  return Worker.create(deployWorkerOptions(options));
}

/** What createDeployWorker gives Worker.create; the benchmark adds its baseline's no-op activities to it. */
export function deployWorkerOptions(options: DeployWorkerOptions): WorkerOptions {
  const bundle = options.workflowBundlePath;
  if (bundle && !existsSync(bundle)) {
    throw new Error(`workflow bundle ${bundle} does not exist; run "npm run build" or unset DEPLOY_WORKFLOW_BUNDLE`);
  }
  return {
    connection: options.connection,
    namespace: options.namespace ?? 'default',
    taskQueue: options.taskQueue,
    ...(bundle ? { workflowBundle: { codePath: bundle } } : { workflowsPath: WORKFLOWS_PATH }),
    activities: createActivities(options.dependencies),
    // A prebuilt bundle already holds the workflow interceptor modules (see bundle-workflows.ts).
    interceptors: { activity: [stepMetricsInterceptor, ...(options.activityInterceptors ?? [])], ...(bundle ? {} : { workflowModules: WORKFLOW_INTERCEPTOR_MODULES }) },
    ...(options.maxCachedWorkflows !== undefined ? { maxCachedWorkflows: options.maxCachedWorkflows } : {}),
    maxConcurrentActivityTaskExecutions: options.maxConcurrentActivities ?? DEFAULT_MAX_CONCURRENT_ACTIVITIES,
  };
}
