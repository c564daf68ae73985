import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';

/** Bundles the workflow code once at build time, so workers start without webpack. */
export const DEFAULT_BUNDLE_PATH = resolve(__dirname, '..', 'workflow-bundle.js');

export async function writeWorkflowBundle(outputPath = DEFAULT_BUNDLE_PATH): Promise<string> {
  const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('../workflows') });
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
