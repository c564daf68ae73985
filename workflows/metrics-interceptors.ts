/**
 * Pipeline metrics, measured from the outside of DeployPipeline: the worker registers this module as a workflow
 * interceptor module (it is bundled with the workflow code), so the pipeline itself stays free of metrics code.
 *
 * Both metrics read the `DeployStatus` search attribute the pipeline publishes (the same state Web UI shows),
 * so they need nothing from the pipeline's internals. Time is workflow time, taken from the history: a replay after
 * a worker restart finds the same start of an approval wait, and the SDK's meter records nothing while replaying.
 */
import type { MetricCounter, MetricHistogram } from '@temporalio/common';
import { ApplicationFailure, isCancellation, metricMeter, workflowInfo, type WorkflowInterceptors } from '@temporalio/workflow';
import { FINAL_STATUSES, type DeployStatus } from '../common/types';
import { DeployApp, DeployEnvironment, DeployStatusAttribute, DeployTrigger, WORKFLOW_TYPE } from './definitions';

export const PIPELINE_OUTCOME_METRIC = 'deploy_pipelines_finished_total';
export const APPROVAL_WAIT_METRIC = 'deploy_approval_wait_seconds';

function searchAttribute(key: typeof DeployStatusAttribute): string | undefined {
  return workflowInfo().typedSearchAttributes.get(key);
}

function publishedStatus(): DeployStatus | undefined {
  return searchAttribute(DeployStatusAttribute) as DeployStatus | undefined;
}

function isFinal(status: DeployStatus | undefined): status is DeployStatus {
  return status !== undefined && FINAL_STATUSES.includes(status);
}

/** An approval wait ends with the decision, or with the pipeline ending for another reason (expiry, cancellation). */
function decisionAfterWait(status: DeployStatus | undefined): string {
  return isFinal(status) ? status.toLowerCase() : 'approved';
}

class PipelineMetrics {
  private readonly outcomes: MetricCounter;
  private readonly approvalWaits: MetricHistogram;
  private approvalWait?: { startedAt: number; environment: string };

  constructor() {
    this.outcomes = metricMeter.createCounter(PIPELINE_OUTCOME_METRIC, 'pipelines', 'Deploy pipelines that ended, by outcome (their final DeployStatus)');
    this.approvalWaits = metricMeter.createHistogram(
      APPROVAL_WAIT_METRIC,
      'float',
      's',
      'How long a pipeline waited for approve or reject before it went on or ended, by decision',
    );
  }

  private labels(): Record<string, string> {
    return { app: searchAttribute(DeployApp) ?? 'unknown', trigger: searchAttribute(DeployTrigger) ?? 'unknown' };
  }

  /** A pipeline that returned has published its outcome; one that threw may have failed before it could. */
  countOutcome(ending: 'returned' | 'failed' | 'cancelled'): void {
    const status = publishedStatus();
    const fallback: DeployStatus = ending === 'cancelled' ? 'CANCELLED' : ending === 'failed' ? 'FAILED' : 'SUCCEEDED';
    const outcome = ending === 'returned' ? (status ?? fallback) : isFinal(status) ? status : fallback;
    this.outcomes.add(1, { ...this.labels(), outcome });
  }

  /** Called once per activation, after the workflow code has settled: sees every change of the published status. */
  followApprovalWait(): void {
    const status = publishedStatus();
    if (status === 'AWAITING_APPROVAL') {
      this.approvalWait ??= { startedAt: Date.now(), environment: searchAttribute(DeployEnvironment) ?? 'unknown' };
      return;
    }
    if (!this.approvalWait) return;
    const { startedAt, environment } = this.approvalWait;
    this.approvalWait = undefined;
    this.approvalWaits.record((Date.now() - startedAt) / 1000, { ...this.labels(), environment, decision: decisionAfterWait(status) });
  }
}

export function interceptors(): WorkflowInterceptors {
  // The bundle may hold other workflow types (benchmarks, tests): they have no pipeline status to measure.
  if (workflowInfo().workflowType !== WORKFLOW_TYPE) return {};
  const metrics = new PipelineMetrics();
  return {
    inbound: [
      {
        async execute(input, next) {
          try {
            const result = await next(input);
            metrics.countOutcome('returned');
            return result;
          } catch (err) {
            // Only these end the run; anything else fails the workflow task, which is retried.
            if (isCancellation(err)) metrics.countOutcome('cancelled');
            else if (err instanceof ApplicationFailure) metrics.countOutcome('failed');
            throw err;
          }
        },
      },
    ],
    internals: [
      {
        concludeActivation(input, next) {
          metrics.followApprovalWait();
          return next(input);
        },
      },
    ],
  };
}
