/**
 * The bench worker's workflow code: the product's workflows unchanged, plus the baseline they are measured
 * against. One bundle, one worker, one task queue: pipeline and baseline share everything but their work.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { BenchActivities } from './activities';

export * from '../workflows';

const { benchNoop } = proxyActivities<BenchActivities>({ startToCloseTimeout: '1 minute' });

/** As many no-op activities, one after another, as a pipeline runs. */
export async function BareWorkflow(activities: number): Promise<number> {
  for (let step = 0; step < activities; step++) await benchNoop(step);
  return activities;
}
