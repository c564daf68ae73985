import type { LogLevel, Logger } from '@temporalio/common';
import { makeTelemetryFilterString, Runtime } from '@temporalio/worker';
import { STEP_DURATION_METRIC } from '../activities/metrics-interceptor';
import { parseDuration } from '../common/duration';
import { SettingsError, type Env } from '../common/settings';
import { APPROVAL_WAIT_METRIC } from '../workflows/metrics-interceptors';
import { LOG_LEVELS } from './logging';

/** The port conventionally used for a Prometheus endpoint of this kind; the image and docker-compose.yml use it. */
export const DEFAULT_METRICS_PORT = 9464;

export interface TelemetrySettings {
  /** host:port for the Prometheus endpoint (`/metrics`); without it the worker exports no metrics. */
  metricsAddress?: string;
  /** How often the delivery metrics are read again from the pipelines' records (with a metrics address only). */
  deliveryMetricsIntervalMs: number;
  logLevel: LogLevel;
}

const DEFAULT_DELIVERY_METRICS_INTERVAL = '1m';

const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/** The default buckets suit sub-second RPCs; pipeline steps take seconds to an hour and approvals hours to days. */
const BUCKETS_SECONDS: Record<string, number[]> = {
  [STEP_DURATION_METRIC]: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
  [APPROVAL_WAIT_METRIC]: [60, 300, 900, 1800, 3600, 7200, 14_400, 28_800, 86_400, 172_800, 345_600, 604_800, 1_209_600],
};

export function loadTelemetrySettings(env: Env = process.env): TelemetrySettings {
  const problems: string[] = [];
  const metricsAddress = env.DEPLOY_METRICS_ADDRESS?.trim() || undefined;
  if (metricsAddress) {
    const match = HOST_PORT.exec(metricsAddress);
    const port = Number(match?.[2]);
    if (!match || port < 1 || port > 65_535) {
      problems.push(`DEPLOY_METRICS_ADDRESS "${metricsAddress}" must be host:port, e.g. 0.0.0.0:${DEFAULT_METRICS_PORT}`);
    }
  }
  let deliveryMetricsIntervalMs = parseDuration(DEFAULT_DELIVERY_METRICS_INTERVAL);
  const interval = env.DEPLOY_DELIVERY_METRICS_INTERVAL?.trim();
  if (interval) {
    try {
      deliveryMetricsIntervalMs = parseDuration(interval);
      if (deliveryMetricsIntervalMs < 1000) problems.push(`DEPLOY_DELIVERY_METRICS_INTERVAL "${interval}" must be at least 1s`);
    } catch (err) {
      problems.push(`DEPLOY_DELIVERY_METRICS_INTERVAL: ${(err as Error).message}`);
    }
  }
  const level = (env.DEPLOY_LOG_LEVEL?.trim() || 'INFO').toUpperCase();
  if (!LOG_LEVELS.includes(level as LogLevel)) problems.push(`DEPLOY_LOG_LEVEL "${env.DEPLOY_LOG_LEVEL}" must be one of ${LOG_LEVELS.join(', ')}`);
  if (problems.length > 0) throw new SettingsError(`the worker's telemetry settings are invalid:\n  - ${problems.join('\n  - ')}`);
  return { metricsAddress, deliveryMetricsIntervalMs, logLevel: level as LogLevel };
}

/** The SDK Core's own logs are chatty below INFO; they follow our level from INFO up. */
function coreLogLevel(level: LogLevel): LogLevel {
  return LOG_LEVELS.indexOf(level) < LOG_LEVELS.indexOf('INFO') ? 'INFO' : level;
}

/**
 * Configures the process-wide SDK runtime: every log (ours, the SDK's and SDK Core's) goes to `logger`, and with a
 * metrics address the SDK's Prometheus endpoint serves its own metrics and ours. Once per process, before any
 * connection is made.
 */
export function installRuntime(settings: TelemetrySettings, logger: Logger): Runtime {
  return Runtime.install({
    logger,
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: coreLogLevel(settings.logLevel), other: 'WARN' }), forward: {} },
      ...(settings.metricsAddress
        ? { metrics: { prometheus: { bindAddress: settings.metricsAddress, histogramBucketOverrides: BUCKETS_SECONDS } } }
        : {}),
    },
  });
}
