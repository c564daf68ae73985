/**
 * What item 2b's plain script makes again: every step a pipeline ran, with its arguments and result, written by the
 * bench's worker as it runs them. A pipeline's history cannot say it since its quick steps are local activities
 * (1.3): their markers hold the result, not the arguments. One JSON line per completed step, in BENCH_CALL_LOG.
 */
import { appendFileSync } from 'node:fs';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';

export interface LoggedCall {
  workflowId: string;
  type: string;
  args: unknown[];
  result: unknown;
  /** When the workflow asked for it (its first attempt): calls asked for before another ended did not wait for it. */
  scheduledMs: number;
  endedMs: number;
}

export function callLogInterceptor(path: string): ActivityInterceptorsFactory {
  return (ctx) => ({
    inbound: {
      async execute(input, next) {
        const result = await next(input);
        const { activityType, workflowExecution, scheduledTimestampMs } = ctx.info;
        const line: LoggedCall = {
          workflowId: workflowExecution?.workflowId ?? '',
          type: activityType,
          args: input.args,
          result,
          scheduledMs: scheduledTimestampMs,
          endedMs: Date.now(),
        };
        appendFileSync(path, `${JSON.stringify(line)}\n`);
        return result;
      },
    },
  });
}
