import type { Client } from '@temporalio/client';
import type { Logger, MetricGauge, MetricMeter } from '@temporalio/common';
import { readDeliveryMetrics, type CommitDates } from '../client/delivery-records';
import type { Catalogue } from '../common/catalogue';
import type { DeliveryMetrics, DeployAttempt } from '../common/delivery-metrics';

/**
 * The delivery metrics as Prometheus gauges on the worker's endpoint. A worker's own counters restart with it
 * and see only the pipelines it ran, so these are read again and again from the pipelines' records in Temporal:
 * every worker of a task queue exports the same values (aggregate with max, not sum).
 */

export const DELIVERY_METRICS = {
  deployments: 'deploy_delivery_deployments',
  failedChanges: 'deploy_delivery_failed_changes',
  perDay: 'deploy_delivery_deployments_per_day',
  changeFailureRatio: 'deploy_delivery_change_failure_ratio',
  leadTime: 'deploy_delivery_lead_time_seconds',
  timeToRestore: 'deploy_delivery_time_to_restore_seconds',
} as const;

export interface DeliveryMetricsPublisher {
  /** Reads the records and sets the gauges now; resolves with what it set. */
  refresh(): Promise<DeliveryMetrics[]>;
  stop(): Promise<void>;
}

export interface DeliveryMetricsPublisherOptions {
  client: Client;
  meter: MetricMeter;
  catalogue: Catalogue;
  taskQueue: string;
  intervalMs: number;
  windowDays?: number;
  commitDates?: CommitDates;
  logger: Logger;
}

export function publishDeliveryMetrics(options: DeliveryMetricsPublisherOptions): DeliveryMetricsPublisher {
  const window = `over the last ${options.windowDays ?? 30} days, from the pipelines' records`;
  const gauge = (name: string, type: 'int' | 'float', unit: string, what: string): MetricGauge => options.meter.createGauge(name, type, unit, `${what} ${window}`);
  const gauges = {
    deployments: gauge(DELIVERY_METRICS.deployments, 'int', 'deploys', 'Deploys that stayed, per app and environment,'),
    failedChanges: gauge(DELIVERY_METRICS.failedChanges, 'int', 'deploys', 'Deploys rolled back or failed after changing the charts,'),
    perDay: gauge(DELIVERY_METRICS.perDay, 'float', 'deploys', 'Deploys that stayed per day,'),
    changeFailureRatio: gauge(DELIVERY_METRICS.changeFailureRatio, 'float', 'ratio', 'Failed deploys among all deploys,'),
    leadTime: gauge(DELIVERY_METRICS.leadTime, 'float', 's', 'Median time from a commit to its deploy finishing,'),
    timeToRestore: gauge(DELIVERY_METRICS.timeToRestore, 'float', 's', 'Median time from a failed deploy to the next one that stayed,'),
  };
  const seen = new Map<string, { state: string; attempts: DeployAttempt[] }>();
  const refresh = async (): Promise<DeliveryMetrics[]> => {
    const rows = await readDeliveryMetrics(options.client, {
      taskQueue: options.taskQueue,
      catalogue: options.catalogue,
      windowDays: options.windowDays,
      commitDates: options.commitDates,
      seen,
    });
    for (const row of rows) {
      const labels = { app: row.app, environment: row.environment, taskQueue: options.taskQueue };
      gauges.deployments.set(row.deployments, labels);
      gauges.failedChanges.set(row.failures, labels);
      gauges.perDay.set(row.deploymentsPerDay, labels);
      // Without a deploy there is no rate or median to report: the series stays absent rather than a misleading 0.
      if (row.changeFailureRate !== undefined) gauges.changeFailureRatio.set(row.changeFailureRate, labels);
      if (row.leadTimeSeconds !== undefined) gauges.leadTime.set(row.leadTimeSeconds, labels);
      if (row.timeToRestoreSeconds !== undefined) gauges.timeToRestore.set(row.timeToRestoreSeconds, labels);
    }
    return rows;
  };
  let running: Promise<unknown> | undefined;
  const tick = () => {
    // A slow read is not piled upon: the next tick after it ends reads again.
    if (running) return;
    running = refresh()
      .catch((err: unknown) => options.logger.warn("could not read the delivery metrics from the pipelines' records", { error: (err as Error).message }))
      .finally(() => (running = undefined));
  };
  tick();
  const timer = setInterval(tick, options.intervalMs);
  timer.unref();
  return {
    refresh,
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
