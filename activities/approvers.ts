import type { IdentityQuestion, ReleasePeople } from '../common/ports';
import { isFullSha } from '../common/names';
import { isAmong } from '../common/people';
import { Context } from '@temporalio/activity';
import { IdentityRefusedError, RefNotFoundError } from '../common/errors';
import type { DecisionProof, VerifiedPerson } from '../common/types';
import { classified, type Stage } from './stage';

/** What the approval gate asks GitHub: who sent a decision, who wrote the release, and who belongs to a team. */
export function createApproverActivities(stage: Stage) {
  const { sourceHost, identity, charts } = stage.deps;
  /**
   * Proofs this worker accepted, with the run they decided for: a retry of the same run's check passes, any other
   * run (a manual deploy of the same commit again reuses its workflow ID) is a replay. Kept a day, far longer
   * than a proof lives (tokens 5 minutes, signatures DEPLOY_SIGNATURE_MAX_AGE); each pipeline also refuses a
   * proof it has recorded, whichever worker checked it.
   */
  const usedProofs = new Map<string, { runId: string; until: number }>();
  const PROOF_MEMORY_MS = 24 * 3_600_000;

  return {
    async isTeamMember(request: { team: string; login: string }): Promise<boolean> {
      return classified(async () => {
        const [org, team] = request.team.replace(/^@/, '').split('/');
        return sourceHost.isTeamMember(org!, team!, request.login);
      });
    },

    /**
     * The person a proof vouches for, for exactly this question; or, for a decision signal (`signal`: its name and
     * place among the run's signals of that name), the person its Temporal principal is. Only the asking run's own
     * history is read. IdentityRefused (permanent) when nothing vouches for the question.
     */
    async verifyIdentity(request: { question: IdentityQuestion; proof?: DecisionProof; signal?: { name: string; ordinal: number } }): Promise<VerifiedPerson> {
      return classified(async () => {
        const { workflowId = '', runId = '' } = Context.current().info.workflowExecution ?? {};
        const { question, proof, signal } = request;
        const person = signal && !proof ? await identity.signalSender(question, { workflowId, runId, name: signal.name, ordinal: signal.ordinal }) : await identity.verify(question, proof!);
        const now = Date.now();
        for (const [id, use] of usedProofs) if (use.until < now) usedProofs.delete(id);
        const earlier = usedProofs.get(person.proofId);
        if (earlier && earlier.runId !== runId) throw new IdentityRefusedError(`this proof was used before: each decision needs a fresh token or signature`);
        usedProofs.set(person.proofId, { runId, until: now + PROOF_MEMORY_MS });
        return person;
      });
    },

    /**
     * Why this person may not clear a hold on the app in the environment, if they may not: only its approvers may,
     * and where decisions are verified, only with a proof (`verified`: a proof named them). Anyone, written out,
     * lets anyone.
     */
    async holdClearRefusal(request: { app: string; environment: string; login: string; verified: boolean }): Promise<string | undefined> {
      return classified(async () => {
        const { env } = stage.target(request);
        if (env.identity === 'verified' && !request.verified) {
          return `holds on ${request.app} in ${request.environment} are cleared only by a verified approver: sign it (deploy hold clear … --sign-with KEY); a name alone ("${request.login}") proves nothing`;
        }
        const isMember = (team: string) => {
          const [org, slug] = team.slice(1).split('/');
          return sourceHost.isTeamMember(org!, slug!, request.login);
        };
        if (await isAmong(request.login, env.approvers, isMember)) return undefined;
        return `${request.login} may not clear holds on ${request.app} in ${request.environment}: only its approvers may (${env.approvers.join(', ')})`;
      });
    },

    /**
     * Who wrote, committed or merged the commits between what the environment runs and the release. An
     * environment whose commit GitHub cannot name counts the release's head commit alone.
     */
    async releasePeople(request: { app: string; environment: string; sha: string }): Promise<ReleasePeople> {
      return classified(async () => {
        const { app, env } = stage.target(request);
        const file = await charts.readImageTag(app.name, env.name);
        let base: string | undefined;
        if (file.imageTag && isFullSha(file.imageTag)) base = file.imageTag;
        else if (file.imageTag) {
          try {
            base = await sourceHost.resolveRef(app.repo, file.imageTag);
          } catch (err) {
            if (!(err instanceof RefNotFoundError)) throw err;
          }
        }
        return sourceHost.releasePeople(app.repo, base === request.sha ? undefined : base, request.sha);
      });
    },
  };
}
