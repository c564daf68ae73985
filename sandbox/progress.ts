import type { Client } from '@temporalio/client';
import { listPipelines, pipelineStatus, type PipelineSummary } from '../client/pipelines';
import { shortSha } from '../common/names';
import type { DeployStatus, PipelineStatus } from '../common/types';

/**
 * Tells the person at the terminal what the pipelines do: a line whenever an environment of a pipeline
 * changes state, or the pipeline as a whole starts building or ends. Running pipelines are asked with the
 * `status` query (it knows every environment); finished ones are read from Temporal's visibility.
 */

export interface ProgressOptions {
  client: Client;
  print: (line: string) => void;
  /** How to run the deploy CLI from here, for the approval hint. */
  deployCommand: string;
  pipelineUrl: (workflowId: string) => string;
  intervalMs?: number;
}

export interface ProgressWatcher {
  stop(): Promise<void>;
}

/** Whole-pipeline statuses worth a line; the others repeat what an environment's line already says. */
const PIPELINE_LEVEL: readonly string[] = ['RESOLVING', 'BUILDING', 'SUCCEEDED', 'FAILED', 'ROLLED_BACK', 'SUPERSEDED', 'REJECTED', 'EXPIRED', 'CANCELLED'];

const LISTED = 200;
const QUERIED_PER_LOOK = 20;

function rowKey(p: PipelineSummary): string {
  return [p.temporalStatus, p.status, p.environment].join('/');
}

export function watchPipelines(options: ProgressOptions): ProgressWatcher {
  const started = Date.now();
  const seen = new Map<string, string>();
  const finished = new Set<string>();
  let stopped = false;
  let failures = 0;

  const line = (summary: PipelineSummary, where: string, what: string): void => {
    const elapsed = `${((Date.now() - started) / 1000).toFixed(1)}s`.padStart(7);
    const name = `${summary.app ?? '?'} ${summary.commit ? shortSha(summary.commit) : ''}`.padEnd(26);
    options.print(`[${elapsed}] ${name} ${where.padEnd(12)} ${what}`);
  };

  const changed = (key: string, value: string): boolean => {
    if (seen.get(key) === value) return false;
    seen.set(key, value);
    return true;
  };

  const report = (summary: PipelineSummary, status: PipelineStatus | undefined): void => {
    const id = summary.workflowId;
    for (const env of status?.environments ?? []) {
      if (env.state === 'PENDING' || !changed(`${id}/${env.environment}`, env.state)) continue;
      line(summary, env.environment, env.state + (env.error ? `: ${env.error}` : ''));
      if (env.state === 'AWAITING_APPROVAL') {
        options.print(`          approve with: ${options.deployCommand} approve ${id} --environment ${env.environment}`);
        options.print(`          or send the "approve" signal from Temporal Web UI: ${options.pipelineUrl(id)}`);
      }
    }
    const overall: string = status?.status ?? summary.status ?? summary.temporalStatus;
    if (PIPELINE_LEVEL.includes(overall) && changed(id, overall)) {
      const failure = status?.failure ? `: ${status.failure}` : '';
      line(summary, '', overall + failure);
      if ((overall as DeployStatus) === 'SUCCEEDED') options.print(`          ${summary.app} ${summary.commit ? shortSha(summary.commit) : ''} is deployed to every environment`);
    }
  };

  const look = async (): Promise<void> => {
    const pipelines = await listPipelines(options.client, { limit: LISTED });
    // A pipeline waiting for approval changes nothing until its row does, so a thousand of them cost one
    // list call per look; the others are asked each time, as a step can pass without changing the row.
    const changedRows = pipelines
      .reverse()
      .filter((p) => !finished.has(p.workflowId) && (changed(`${p.workflowId}#row`, rowKey(p)) || (p.temporalStatus === 'RUNNING' && p.status !== 'AWAITING_APPROVAL')));
    for (const [index, summary] of changedRows.entries()) {
      if (index === QUERIED_PER_LOOK) {
        options.print(`          … and ${changedRows.length - index} more pipelines are moving; "${options.deployCommand} list" shows them all`);
        for (const rest of changedRows.slice(index)) seen.delete(`${rest.workflowId}#row`);
        break;
      }
      let status: PipelineStatus | undefined;
      try {
        status = await pipelineStatus(options.client, summary.workflowId);
      } catch {
        // A pipeline that failed before its first workflow task answers no query; visibility still knows.
      }
      report(summary, status);
      if (summary.temporalStatus !== 'RUNNING') finished.add(summary.workflowId);
    }
  };

  const loop = (async () => {
    while (!stopped) {
      try {
        await look();
        failures = 0;
      } catch (err) {
        // Temporal going away is what shutdown looks like; say so only when it lasts.
        if (++failures === 5) options.print(`(cannot list pipelines: ${(err as Error).message})`);
      }
      await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 500));
    }
  })();

  return {
    async stop() {
      stopped = true;
      await loop;
    },
  };
}
