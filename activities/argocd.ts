import { isFullSha, shortSha } from '../common/names';
import type { ArgoApplicationStatus } from '../common/ports';
import { FailureTypes } from '../common/types';
import { classified, permanent, type EnvironmentStep, type Stage } from './stage';

export interface SyncTarget extends EnvironmentStep {
  chartsCommit: string;
}

export interface SyncedState {
  revision: string;
  health: string;
}

/** Every how many looks the step asks Argo CD to look at git again, in case its own refresh was lost. */
const STALE_REFRESH_EVERY = 5;

/** Step 3.5, Argo CD: the environment really runs our charts commit. */
export function createArgoCdActivities(stage: Stage) {
  const { argoCd, charts } = stage.deps;

  return {
    /** Refresh, then poll until Argo CD runs our charts commit (or a later one) Synced and Healthy. */
    async waitForArgoSync(target: SyncTarget): Promise<SyncedState> {
      return classified(async () => {
        const { env } = stage.target(target);
        const knownDescendants = new Set<string>([target.chartsCommit]);
        const atOrAfterOurs = async (revision: string | undefined): Promise<boolean> => {
          // Argo CD reports what it reports; anything but a commit SHA is "not yet ours", never a reason to fail.
          if (!revision || !isFullSha(revision)) return false;
          if (knownDescendants.has(revision)) return true;
          const ok = await charts.isAncestor(target.chartsCommit, revision);
          if (ok) knownDescendants.add(revision);
          return ok;
        };
        return stage.pollUntil(async (attempt) => {
          const refresh = attempt % STALE_REFRESH_EVERY === 0 ? 'normal' : undefined;
          const status: ArgoApplicationStatus = await argoCd.getApplication(env.argocdApplication, refresh);
          // A status from before our commit says nothing about our release, whatever it says.
          if (!(await atOrAfterOurs(status.syncRevision))) return undefined;
          const where = `Argo CD application ${status.name} at charts commit ${shortSha(status.syncRevision!)}`;
          const operationIsOurs = status.operationRevision === undefined || (await atOrAfterOurs(status.operationRevision));
          // Until our revision is synced, the health Argo CD reports is the old rollout's.
          if (status.syncStatus === 'Synced' && operationIsOurs && status.healthStatus === 'Degraded') {
            throw permanent(FailureTypes.ArgoCdDegraded, `${where} is Degraded${status.healthMessage ? `: ${status.healthMessage}` : ''}`);
          }
          if (operationIsOurs && (status.operationPhase === 'Failed' || status.operationPhase === 'Error')) {
            throw permanent(FailureTypes.ArgoCdSyncFailed, `${where}: sync ${status.operationPhase}${status.operationMessage ? `: ${status.operationMessage}` : ''}`);
          }
          const done =
            status.syncStatus === 'Synced' &&
            operationIsOurs &&
            (status.operationPhase === undefined || status.operationPhase === 'Succeeded') &&
            status.healthStatus === 'Healthy';
          return done ? { revision: status.syncRevision!, health: status.healthStatus } : undefined;
        });
      });
    },
  };
}
