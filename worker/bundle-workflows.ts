import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { bundleWorkflowCode, type BundleOptions } from '@temporalio/worker';

/** Bundles the workflow code once at build time, so workers start without webpack. */
export const DEFAULT_BUNDLE_PATH = resolve(__dirname, '..', 'workflow-bundle.js');

export const WORKFLOWS_PATH = require.resolve('../workflows');

/**
 * Workflow interceptor modules live inside the bundle: a worker given a prebuilt bundle ignores its own
 * `interceptors.workflowModules`, so every bundle of our workflows must be made with these.
 */
export const WORKFLOW_INTERCEPTOR_MODULES = [require.resolve('../workflows/metrics-interceptors')];

export async function bundleDeployWorkflows(options: Pick<BundleOptions, 'logger'> = {}): Promise<string> {
  const { code } = await bundleWorkflowCode({ ...options, workflowsPath: WORKFLOWS_PATH, workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES });
  return code;
}

export async function writeWorkflowBundle(outputPath = DEFAULT_BUNDLE_PATH): Promise<string> {
  const code = await bundleDeployWorkflows();
  mkdirSync(dirname(outputPath), { recursive: true });
  writeFileSync(outputPath, code);
  return outputPath;
}

if (require.main === module) {
  writeWorkflowBundle(process.argv[2]).then(
    (path) => console.error(`workflow bundle written to ${path}`),
    (err) => {
      console.error(`could not bundle the workflows: ${(err as Error).message}`);
      process.exit(1);
    },
  );
}
