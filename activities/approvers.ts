import type { IdentityQuestion, ReleasePeople } from '../common/ports';
import { isFullSha } from '../common/names';
import { RefNotFoundError } from '../common/errors';
import type { DecisionProof, VerifiedPerson } from '../common/types';
import { classified, type Stage } from './stage';

/** What the approval gate asks GitHub: who sent a decision, who wrote the release, and who belongs to a team. */
export function createApproverActivities(stage: Stage) {
  const { sourceHost, identity, charts } = stage.deps;

  return {
    async isTeamMember(request: { team: string; login: string }): Promise<boolean> {
      return classified(async () => {
        const [org, team] = request.team.replace(/^@/, '').split('/');
        return sourceHost.isTeamMember(org!, team!, request.login);
      });
    },

    /** The person a proof vouches for, for exactly this question; IdentityRefused (permanent) when it does not. */
    async verifyIdentity(request: { question: IdentityQuestion; proof: DecisionProof }): Promise<VerifiedPerson> {
      return classified(() => identity.verify(request.question, request.proof));
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
