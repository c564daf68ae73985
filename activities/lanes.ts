import { Context } from '@temporalio/activity';
import { msUntilWindowOpens } from '../common/deploy-windows';
import type { Hold, LaneRequest } from '../common/types';
import { acquireLaneSignal, awaitingApprovalSignal, LANE_WORKFLOW_TYPE, laneWorkflowId, setHoldSignal } from '../workflows/definitions';
import { classified, type Stage } from './stage';

/** What a pipeline tells its lane by signal-with-start: what must reach it even when the lane has ended. */
export type LaneSignalRequest = { app: string; environment: string } & (
  | { signal: 'acquire' | 'awaitingApproval'; request: LaneRequest }
  | { signal: 'setHold'; request: Hold }
);

/** Step 3's opening: the deploy window, and what a pipeline tells the lane of its app and environment. */
export function createLaneActivities(stage: Stage) {
  return {
    /** Signal-with-start: the lane workflow may have ended while idle. */
    async signalLane(request: LaneSignalRequest): Promise<void> {
      return classified(async () => {
        const { app, env } = stage.target(request);
        const { client, info } = Context.current();
        const start = { workflowId: laneWorkflowId(info.taskQueue, app.name, env.name), taskQueue: info.taskQueue, args: [{ app: app.name, environment: env.name }] as const };
        if (request.signal === 'setHold') await client.workflow.signalWithStart(LANE_WORKFLOW_TYPE, { ...start, signal: setHoldSignal, signalArgs: [request.request] });
        else {
          const signal = request.signal === 'acquire' ? acquireLaneSignal : awaitingApprovalSignal;
          await client.workflow.signalWithStart(LANE_WORKFLOW_TYPE, { ...start, signal, signalArgs: [request.request] });
        }
      });
    },

    /** 0 when automatic deploys may run now; otherwise how long until the next deploy window opens. */
    async msUntilDeployWindow(request: { app: string; environment: string; nowMs: number }): Promise<number> {
      return classified(async () => msUntilWindowOpens(stage.target(request).env.deployWindows, request.nowMs));
    },
  };
}
