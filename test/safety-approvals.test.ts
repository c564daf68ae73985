import { shortSha } from '../common/names';
import type { PipelineStatus } from '../common/types';
import { readFileAt } from './support/charts-repo';
import { startHarness, type PipelineHarness } from './support/pipeline';
import { imageTagFile } from './support/safety';

/** Who approved what is policy: every refusal is immediate (CLI exit 3, the reason on stderr) and changes nothing. */
describe('approval policy', () => {
  let h: PipelineHarness;
  beforeAll(async () => {
    h = await startHarness({
      apps: {
        publisher: {
          environments: {
            integration: { continuousDeployment: true },
            staging: { continuousDeployment: false, approvers: ['alice', '@alphagov/release-managers'] },
            production: { continuousDeployment: false, approvers: ['bob', 'dora'] },
          },
        },
        'specialist-publisher': {
          environments: {
            integration: { continuousDeployment: true },
            staging: { continuousDeployment: false },
            production: { continuousDeployment: false, allowSelfApproval: true },
          },
        },
      },
    });
    h.stack.github.addTeamMember('alphagov', 'release-managers', 'erin');
    h.stack.github.addTeamMember('alphagov', 'content-designers', 'mallory');
  });
  afterAll(async () => h?.close());

  async function awaiting(app: string, environment: string, workflowId: string): Promise<PipelineStatus> {
    return h.waitForStatus(workflowId, (s) => s.awaitingApprovalFor === environment, `${app} to wait for ${environment} approval`);
  }

  /** What a refusal must leave as it was. */
  async function snapshot(app: string, workflowId: string) {
    const status = await h.status(workflowId);
    return {
      // A refused decision is shown in its environment's status (refusedDecision); nothing else may change.
      status: { status: status.status, awaitingApprovalFor: status.awaitingApprovalFor, environments: status.environments.map(({ refusedDecision: _shown, ...env }) => env) },
      files: await Promise.all(['integration', 'staging', 'production'].map((env) => readFileAt(h.stack.charts.bareDir, 'main', imageTagFile(app, env)))),
      records: h.stack.release.deployments.filter((d) => d.repo === `alphagov/${app}`).length,
    };
  }

  async function refused(workflowId: string, args: string[], reason: string): Promise<void> {
    const run = await h.cli(['approve', workflowId, ...args]);
    expect(run).toEqual({ code: 3, out: [], err: [`deploy: refused: ${reason}`] });
  }

  /** Updates refused by the validator never reach the history; accepted ones, refused by the handler, do. */
  async function handlerRefusals(workflowId: string): Promise<string[]> {
    const history = await h.handle(workflowId).fetchHistory();
    return (history.events ?? [])
      .map((e) => e.workflowExecutionUpdateCompletedEventAttributes?.outcome?.failure?.message)
      .filter((m): m is string => typeof m === 'string');
  }

  it('refuses approvers not on the list, the author in production and a second approval; lets a team member approve', async () => {
    const sha = await h.stack.merge('publisher', { authorLogin: 'dora' });
    const { workflowId } = await h.startCi('publisher', sha);
    await awaiting('publisher', 'staging', workflowId);
    let before = await snapshot('publisher', workflowId);

    // Not on the list, not in the team: GitHub is asked, so the refusal comes from the update's handler.
    const notApprover = 'mallory may not approve deploys to staging (approvers: alice, @alphagov/release-managers)';
    await refused(workflowId, ['--environment', 'staging', '--approver', 'mallory'], notApprover);
    expect(await snapshot('publisher', workflowId)).toEqual(before);
    expect(await handlerRefusals(workflowId)).toEqual([notApprover]);

    // A member of the team may.
    const approved = await h.cli(['approve', workflowId, '--environment', 'staging', '--approver', 'erin', '--comment', 'ship it']);
    expect(approved).toMatchObject({ code: 0, out: [`approved staging for ${workflowId} as erin`] });

    // A second approval of staging is refused, whoever gives it, while staging deploys and after.
    const twice = 'staging was already approved by erin';
    await refused(workflowId, ['--environment', 'staging', '--approver', 'alice'], twice);
    const atProduction = await awaiting('publisher', 'production', workflowId);
    expect(atProduction.environments[1]).toMatchObject({ state: 'DEPLOYED', approval: { by: 'erin', comment: 'ship it' } });
    expect(await readFileAt(h.stack.charts.bareDir, 'main', imageTagFile('publisher', 'staging'))).toContain(`image_tag: ${sha}`);
    before = await snapshot('publisher', workflowId);
    await refused(workflowId, ['--environment', 'staging', '--approver', 'alice'], twice);
    expect(await snapshot('publisher', workflowId)).toEqual(before);
    expect(h.stack.release.deployments.filter((d) => d.version === sha).map((d) => d.environment)).toEqual(['integration', 'staging']);

    // Production: users only, so the validator refuses at once (nothing in the history).
    const refusalsSoFar = await handlerRefusals(workflowId);
    await refused(workflowId, ['--environment', 'production', '--approver', 'carol'], 'carol may not approve deploys to production (approvers: bob, dora)');
    expect(await snapshot('publisher', workflowId)).toEqual(before);
    // Dora is an approver, but wrote the commit.
    const selfApproval = `dora wrote ${shortSha(sha)} and may not approve its deploy to production`;
    await refused(workflowId, ['--environment', 'production', '--approver', 'dora'], selfApproval);
    await refused(workflowId, ['--environment', 'production', '--approver', 'Dora'], `Dora wrote ${shortSha(sha)} and may not approve its deploy to production`);
    expect(await snapshot('publisher', workflowId)).toEqual(before);
    expect(await handlerRefusals(workflowId)).toEqual(refusalsSoFar);

    expect((await h.cli(['approve', workflowId, '--environment', 'production', '--approver', 'bob'])).code).toBe(0);
    const result = await h.handle(workflowId).result();
    expect(result.status).toBe('SUCCEEDED');
    expect(result.environments.map((e) => [e.environment, e.state, e.approval?.by])).toEqual([
      ['integration', 'DEPLOYED', undefined],
      ['staging', 'DEPLOYED', 'erin'],
      ['production', 'DEPLOYED', 'bob'],
    ]);
    await refused(workflowId, ['--environment', 'production', '--approver', 'bob'], `pipeline ${workflowId} has already finished: SUCCEEDED`);
  });

  it('a team check GitHub cannot answer refuses the decision with the reason, and the pipeline keeps waiting', async () => {
    const sha = await h.stack.merge('publisher');
    const { workflowId } = await h.startCi('publisher', sha);
    await awaiting('publisher', 'staging', workflowId);
    const before = await snapshot('publisher', workflowId);
    // GitHub refuses the membership check (403: the token lacks read:org), every time it is asked.
    const fault = h.stack.github.injectFault({ pathPattern: '^/orgs/alphagov/teams/release-managers/memberships/', status: 403, body: { message: 'Resource not accessible by integration' }, times: Infinity });
    try {
      const reason = /^could not check now whether erin may approve deploys to staging: GitHub GET \S+ returned 403: Resource not accessible by integration; nothing was decided, send the decision again$/;
      const run = await h.cli(['approve', workflowId, '--environment', 'staging', '--approver', 'erin']);
      expect(run.code).toBe(3);
      expect(run.err.join('\n')).toMatch(/^deploy: refused: could not check now whether erin may approve/);
      expect((await handlerRefusals(workflowId)).at(-1)).toMatch(reason);
      // The same through a signal (Web UI): nothing fails, nothing is decided.
      await h.handle(workflowId).signal('approve', { environment: 'staging', approver: 'erin' });
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(await snapshot('publisher', workflowId)).toEqual(before);
      expect((await h.handle(workflowId).describe()).status.name).toBe('RUNNING');
    } finally {
      fault.cancel();
    }
    // Once GitHub answers again, the same approver's decision goes through.
    expect((await h.cli(['approve', workflowId, '--environment', 'staging', '--approver', 'erin'])).code).toBe(0);
    await awaiting('publisher', 'production', workflowId);
    await h.handle(workflowId).cancel();
  });

  it('refuses an approval after a rejection, giving the rejection, and deploys nothing', async () => {
    const sha = await h.stack.merge('publisher');
    const { workflowId } = await h.startCi('publisher', sha);
    await awaiting('publisher', 'staging', workflowId);
    const stagingFile = await readFileAt(h.stack.charts.bareDir, 'main', imageTagFile('publisher', 'staging'));

    const rejected = await h.cli(['reject', workflowId, '--environment', 'staging', '--approver', 'alice', '--reason', 'breaks search']);
    expect(rejected).toMatchObject({ code: 0, out: [`rejected staging for ${workflowId} as alice`] });
    // At once: the pipeline may still be wrapping up, or have finished; either way it names the rejection.
    const soon = await h.cli(['approve', workflowId, '--environment', 'staging', '--approver', 'erin']);
    expect(soon.code).toBe(3);
    expect([
      [`deploy: refused: staging was already rejected by alice: breaks search`],
      [`deploy: refused: pipeline ${workflowId} has already finished: REJECTED (staging rejected by alice: breaks search)`],
    ]).toContainEqual(soon.err);

    const result = await h.handle(workflowId).result();
    expect(result.status).toBe('REJECTED');
    await refused(
      workflowId,
      ['--environment', 'staging', '--approver', 'erin'],
      `pipeline ${workflowId} has already finished: REJECTED (staging rejected by alice: breaks search)`,
    );
    const after = await h.status(workflowId);
    expect(after.status).toBe('REJECTED');
    expect(after.environments[1]).toMatchObject({ state: 'REJECTED', rejection: { by: 'alice', comment: 'breaks search' } });
    expect(after.environments[1]!.approval).toBeUndefined();
    expect(await readFileAt(h.stack.charts.bareDir, 'main', imageTagFile('publisher', 'staging'))).toBe(stagingFile);
    expect(h.stack.release.deployments.filter((d) => d.version === sha).map((d) => d.environment)).toEqual(['integration']);
  });

  it('refuses self-approval in every gated environment by default; lets the author approve production where the catalogue allows it', async () => {
    const sha = await h.stack.merge('specialist-publisher', { authorLogin: 'dora' });
    const { workflowId } = await h.startCi('specialist-publisher', sha);
    await awaiting('specialist-publisher', 'staging', workflowId);
    await refused(workflowId, ['--environment', 'staging', '--approver', 'dora'], `dora wrote ${shortSha(sha)} and may not approve its deploy to staging`);
    expect((await h.cli(['approve', workflowId, '--environment', 'staging', '--approver', 'erin'])).code).toBe(0);
    await awaiting('specialist-publisher', 'production', workflowId);
    expect((await h.cli(['approve', workflowId, '--environment', 'production', '--approver', 'dora'])).code).toBe(0);
    const result = await h.handle(workflowId).result();
    expect(result.status).toBe('SUCCEEDED');
    expect(result.environments[2]).toMatchObject({ state: 'DEPLOYED', approval: { by: 'dora' } });
  });
});
