/** An automatic deploy starts only inside its environment's deploy window. */
import { sleep } from '@temporalio/workflow';
import type { EnvironmentStatus } from '../common/types';
import type { PipelineContext } from './pipeline-context';

/** 0 while the environment's deploy window is open; else how long, from the moment asked, until it opens. */
export async function msUntilWindow({ pipeline, steps }: PipelineContext, env: EnvironmentStatus, askedAt = Date.now()): Promise<number> {
  return steps.calls.msUntilDeployWindow.executeWithOptions({ summary: `Check the deploy window of ${env.environment}` }, [
    { app: pipeline.plan!.app, environment: env.environment, nowMs: askedAt },
  ]);
}

/** Sleeps until the environment's deploy window opens, showing when, if it is closed now. */
export async function awaitDeployWindow(ctx: PipelineContext, env: EnvironmentStatus): Promise<void> {
  const { pipeline } = ctx;
  // The wait is counted from the instant we asked about: the activity itself takes time (and may be retried).
  const askedAt = Date.now();
  const waitMs = await msUntilWindow(ctx, env, askedAt);
  if (waitMs <= 0) return;
  const opensAtMs = askedAt + waitMs;
  const opensAt = new Date(opensAtMs).toISOString();
  env.waitingFor = `the deploy window for ${env.environment} opens at ${opensAt}`;
  pipeline.setStatus('OUTSIDE_WINDOW', env, 'OUTSIDE_WINDOW');
  const remaining = opensAtMs - Date.now();
  if (remaining > 0) await sleep(remaining, { summary: `Wait for the ${env.environment} deploy window (${opensAt})` });
}
