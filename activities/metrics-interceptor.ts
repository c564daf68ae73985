import type { Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';

/**
 * How long each attempt of a pipeline step (an activity) takes, by outcome. The SDK's activity meter adds
 * `activityType`, `namespace` and `taskQueue` to every value.
 */
export const STEP_DURATION_METRIC = 'deploy_step_duration_seconds';

function outcomeOf(err: unknown, ctx: Context): string {
  if (err instanceof CancelledFailure || ctx.cancellationSignal.aborted) return 'cancelled';
  return 'failed';
}

export const stepMetricsInterceptor: ActivityInterceptorsFactory = (ctx) => ({
  inbound: {
    async execute(input, next) {
      const started = performance.now();
      let outcome = 'completed';
      try {
        return await next(input);
      } catch (err) {
        outcome = outcomeOf(err, ctx);
        throw err;
      } finally {
        ctx.metricMeter
          .createHistogram(STEP_DURATION_METRIC, 'float', 's', 'Time one attempt of a pipeline step (activity) took, by outcome')
          .record((performance.now() - started) / 1000, { outcome });
      }
    },
  },
});
