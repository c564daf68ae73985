import { classified, type Stage } from './stage';

/** What the approval gate asks GitHub: whether an approver belongs to a team the environment names. */
export function createApproverActivities(stage: Stage) {
  const { sourceHost } = stage.deps;

  return {
    async isTeamMember(request: { team: string; login: string }): Promise<boolean> {
      return classified(async () => {
        const [org, team] = request.team.replace(/^@/, '').split('/');
        return sourceHost.isTeamMember(org!, team!, request.login);
      });
    },
  };
}
