import { setCurrentDetails, upsertSearchAttributes } from '@temporalio/workflow';
import { shortSha } from '../common/names';
import type { DeployStatus, EnvironmentPlan, EnvironmentState, EnvironmentStatus, PipelineInput, PipelineResume, PipelineStatus, ReleasePlan } from '../common/types';
import { DeployApp, DeployCommit, DeployEnvironment, DeployStatusAttribute, DeployTrigger } from './definitions';
import { renderDetails } from './details';

/** States an environment rests in while it waits: the reason it waits stays shown. */
const WAITING_STATES: EnvironmentState[] = ['WAITING_FOR_LANE', 'FROZEN', 'OUTSIDE_WINDOW'];
const FINISHED_STATES: EnvironmentState[] = ['DEPLOYED', 'REJECTED', 'EXPIRED', 'FAILED', 'CANCELLED', 'ROLLED_BACK', 'SUPERSEDED'];

export function isFinished(state: EnvironmentState): boolean {
  return FINISHED_STATES.includes(state);
}

/**
 * Where a pipeline stands (what the `status` query answers and the result holds) and how that is published: the
 * search attributes, written only when one of them changes, and Web UI's current details, at every step.
 */
export class PipelineState {
  readonly status: PipelineStatus;
  /** Known once the release is resolved. */
  plan?: ReleasePlan;
  /** A rollback happened: a failure after it ends the pipeline ROLLED_BACK, not FAILED. */
  rolledBack = false;
  /** Every upsert is a write to the server's visibility store, and most steps change only the details. */
  private upserted?: string;

  constructor(input: PipelineInput, workflowId: string) {
    this.status = { workflowId, app: input.app, ref: input.ref, trigger: input.trigger, status: 'RESOLVING', environments: [] };
  }

  /** Where the run this one continues stood: the same status, plan and rollback, published afresh. */
  resumed({ plan, status, rolledBack }: PipelineResume): void {
    Object.assign(this.status, status);
    this.plan = plan;
    this.rolledBack = rolledBack;
    this.publish();
  }

  get workflowId(): string {
    return this.status.workflowId;
  }

  /** The release is resolved: every environment it goes to starts PENDING. */
  planned(plan: ReleasePlan): void {
    this.plan = plan;
    this.status.sha = plan.sha;
    this.status.tag = plan.tag;
    this.status.environments = plan.environments.map((env) => ({ environment: env.name, state: 'PENDING', tag: plan.tag }));
    this.publish();
  }

  publish(): void {
    const { status } = this;
    const attributes = [
      { key: DeployApp, value: status.app },
      { key: DeployTrigger, value: status.trigger },
      { key: DeployStatusAttribute, value: status.status },
      ...(status.sha ? [{ key: DeployCommit, value: status.sha }] : []),
      ...(status.currentEnvironment ? [{ key: DeployEnvironment, value: status.currentEnvironment }] : []),
    ];
    const values = JSON.stringify(attributes.map(({ key, value }) => [key.name, value]));
    if (values !== this.upserted) upsertSearchAttributes(attributes);
    this.upserted = values;
    setCurrentDetails(renderDetails(status));
  }

  /** Moves the pipeline, and the environment it is at when one is named, and publishes where it stands. */
  setStatus(status: DeployStatus, environment?: EnvironmentStatus, environmentState?: EnvironmentState): void {
    this.status.status = status;
    if (environment && environmentState) {
      if (environment.state !== environmentState) (environment.transitions ??= []).push({ state: environmentState, at: new Date().toISOString() });
      environment.state = environmentState;
      if (!WAITING_STATES.includes(environmentState)) environment.waitingFor = undefined;
      this.status.currentEnvironment = environment.environment;
    }
    this.publish();
  }

  /** The lane says why we still wait for it; said too late (the lane granted meanwhile), it is not news. */
  waitingForLane(environment: string, reason: string): void {
    const env = this.environment(environment);
    if (env && env.state === 'WAITING_FOR_LANE') {
      env.waitingFor = reason;
      this.publish();
    }
  }

  environment(name: string | undefined): EnvironmentStatus | undefined {
    return this.status.environments.find((e) => e.environment === name);
  }

  environmentPlan(name: string): EnvironmentPlan | undefined {
    return this.plan?.environments.find((e) => e.name === name);
  }

  /** How messages to people name the pipeline. */
  headline(): string {
    const { app, sha, ref, workflowId } = this.status;
    return `${app} ${sha ? shortSha(sha) : ref} (${workflowId})`;
  }
}
