import type { EnvironmentConfig } from '../common/catalogue';
import { PermanentHttpError } from '../common/errors';
import { isFullSha, shortSha } from '../common/names';
import type { ArgoApplicationStatus, ArgoCd } from '../common/ports';
import { FailureTypes } from '../common/types';
import { classified, permanent, type EnvironmentStep, type Stage } from './stage';

export interface SyncTarget extends EnvironmentStep {
  chartsCommit: string;
}

export interface SyncedState {
  revision: string;
  health: string;
  /**
   * Apps promoted by their charts flags (`promotion: chartsFlags`): whether the environment's file, at the commit
   * Argo CD synced, said promote_deployment and automatic_deploys_enabled true, as GOV.UK's post-sync workflow asks.
   */
  promotes?: boolean;
}

/** Every how many looks the step asks Argo CD to look at git again, in case its own refresh was lost. */
const STALE_REFRESH_EVERY = 5;

/** Step 3.5, Argo CD: the environment really runs our charts commit. */
export function createArgoCdActivities(stage: Stage) {
  const { charts } = stage.deps;

  return {
    /**
     * Where an app of apps renders the app's Application from the image-tag files, refresh it first and wait until
     * it is Synced at our charts commit (or a later one): until then the app's own Application has nothing new to
     * sync, whatever it is asked. Then poll the app until it runs our image at our commit (or a later one), Synced
     * and Healthy.
     */
    async waitForArgoSync(target: SyncTarget): Promise<SyncedState> {
      return classified(async () => {
        const { app, env } = stage.target(target);
        const argoCd = argoCdOf(env);
        const knownDescendants = new Set<string>([target.chartsCommit]);
        const atOrAfterOurs = async (revision: string | undefined): Promise<boolean> => {
          // Argo CD reports what it reports; anything but a commit SHA is "not yet ours", never a reason to fail.
          if (!revision || !isFullSha(revision)) return false;
          if (knownDescendants.has(revision)) return true;
          const ok = await charts.isAncestor(target.chartsCommit, revision);
          if (ok) knownDescendants.add(revision);
          return ok;
        };
        const look = (name: string, refresh: boolean) => lookUp(argoCd, env, name, refresh ? 'normal' : undefined);
        const parent = env.argocd.appOfApps;
        if (parent) {
          await stage.pollUntil(async (attempt) => {
            const status = await look(parent, attempt % STALE_REFRESH_EVERY === 0);
            if (!(await atOrAfterOurs(status.syncRevision))) return undefined;
            const operationIsOurs = status.operationRevision === undefined || (await atOrAfterOurs(status.operationRevision));
            if (operationIsOurs && (status.operationPhase === 'Failed' || status.operationPhase === 'Error')) {
              const why = status.operationMessage ? `: ${status.operationMessage}` : '';
              throw permanent(FailureTypes.ArgoCdSyncFailed, `Argo CD app of apps ${status.name} at charts commit ${shortSha(status.syncRevision!)}: sync ${status.operationPhase}${why}`);
            }
            const done = status.syncStatus === 'Synced' && operationIsOurs && (status.operationPhase === undefined || status.operationPhase === 'Succeeded');
            return done ? true : undefined;
          });
        }
        const synced = await stage.pollUntil(async (attempt) => {
          const status: ArgoApplicationStatus = await look(env.argocdApplication, attempt % STALE_REFRESH_EVERY === 0);
          // A status from before our commit says nothing about our release, whatever it says.
          if (!(await atOrAfterOurs(status.syncRevision))) return undefined;
          const where = `Argo CD application ${status.name} at charts commit ${shortSha(status.syncRevision!)}`;
          const operationIsOurs = status.operationRevision === undefined || (await atOrAfterOurs(status.operationRevision));
          // Synced at our commit is not enough where an app of apps renders the tag: the image says what runs.
          const runsOurImage = status.images === undefined || status.images.length === 0 || status.images.some((image) => imageTag(image) === target.tag);
          // Until our revision is synced, the health Argo CD reports is the old rollout's.
          if (status.syncStatus === 'Synced' && operationIsOurs && runsOurImage && status.healthStatus === 'Degraded') {
            throw permanent(FailureTypes.ArgoCdDegraded, `${where} is Degraded${status.healthMessage ? `: ${status.healthMessage}` : ''}`);
          }
          if (operationIsOurs && (status.operationPhase === 'Failed' || status.operationPhase === 'Error')) {
            throw permanent(FailureTypes.ArgoCdSyncFailed, `${where}: sync ${status.operationPhase}${status.operationMessage ? `: ${status.operationMessage}` : ''}`);
          }
          const done =
            status.syncStatus === 'Synced' &&
            operationIsOurs &&
            runsOurImage &&
            (status.operationPhase === undefined || status.operationPhase === 'Succeeded') &&
            status.healthStatus === 'Healthy';
          return done ? { revision: status.syncRevision!, health: status.healthStatus } : undefined;
        });
        if (app.promotion !== 'chartsFlags' || target.purpose === 'rollback' || !charts.promotionFlagsAt) return synced;
        const flags = await charts.promotionFlagsAt(target.app, target.environment, synced.revision);
        return { ...synced, promotes: flags.promoteDeployment && flags.automaticDeploysEnabled };
      });
    },
  };

  function argoCdOf(env: EnvironmentConfig): ArgoCd {
    return (env.argocd.url || env.argocd.tokenVariable) && stage.deps.argoCdOf ? stage.deps.argoCdOf(env.argocd) : stage.deps.argoCd;
  }
}

/** Argo CD's 404 names the application only; which Argo CD was asked is what a person needs to know. */
async function lookUp(argoCd: ArgoCd, env: EnvironmentConfig, name: string, refresh: 'normal' | undefined): Promise<ArgoApplicationStatus> {
  try {
    return await argoCd.getApplication(name, refresh);
  } catch (err) {
    if (err instanceof PermanentHttpError && err.status === 404) {
      const which = env.argocd.url ? `the Argo CD at ${env.argocd.url}` : 'the default Argo CD (ARGOCD_URL)';
      throw permanent(
        FailureTypes.PermanentHttpError,
        `${which} has no application ${name}: each environment's cluster has its own Argo CD; does the catalogue's argocd for ${env.name} name ${env.name}'s? (${err.message})`,
      );
    }
    throw err;
  }
}

/** `registry/repository:tag` or `repository@sha256:…`: the tag, if any. */
function imageTag(image: string): string | undefined {
  const name = image.split('@')[0]!;
  const colon = name.lastIndexOf(':');
  return colon > name.lastIndexOf('/') ? name.slice(colon + 1) : undefined;
}
