/** The CLI as people and scripts use it: help that exits 0, a list with a header, status and history that say who decided. */
import { runCli } from '../client/cli';
import { closedPort } from './support/env';
import { startHarness, type PipelineHarness } from './support/pipeline';

/** Its own app: the dev server is shared with other test files, and history lists every pipeline of the app. */
const APP = 'cli-habits';

describe('deploy CLI habits', () => {
  let h: PipelineHarness;
  beforeAll(async () => {
    h = await startHarness({
      apps: { [APP]: { environments: { integration: { continuousDeployment: true }, staging: { continuousDeployment: false } } } },
    });
  });
  afterAll(async () => h?.close());

  async function offline(args: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(args, { env: {}, out: (l) => out.push(l), err: (l) => err.push(l) });
    return { code, out: out.join('\n'), err: err.join('\n') };
  }

  it('exits 5, with one line saying so, when Temporal cannot be reached', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const env = { TEMPORAL_ADDRESS: `127.0.0.1:${await closedPort()}` };
    const code = await runCli(['status', `deploy-${APP}-${'a'.repeat(40)}`], { env, out: (l) => out.push(l), err: (l) => err.push(l) });
    expect({ code, err }).toEqual({ code: 5, err: [expect.stringMatching(/^deploy: cannot reach the service: /)] });
  }, 30_000);

  it('prints help and exits 0 however it is asked; nothing at all is bad input', async () => {
    for (const args of [['--help'], ['-h'], ['help']]) {
      const run = await offline(args);
      expect({ args, code: run.code }).toEqual({ args, code: 0 });
      expect(run.out).toMatch(/^usage: deploy <command> \[options\]/);
      expect(run.out).toMatch(/history {2}what ran on an environment/);
    }
    for (const args of [['help', 'approve'], ['approve', '--help']]) {
      const run = await offline(args);
      expect(run.code).toBe(0);
      expect(run.out).toMatch(/^usage: deploy approve ID --environment ENV/);
      expect(run.out).toContain('--sign-with KEY');
    }
    expect((await offline(['history', '--help'])).out).toMatch(/^usage: deploy history --app APP --environment ENV/);
    const nothing = await offline([]);
    expect(nothing.code).toBe(2);
    expect(nothing.err).toMatch(/^usage: deploy <command>/);
  });

  it('lists pipelines as a table, says what each waits for, and shows the history of an environment', async () => {
    const first = await h.stack.merge(APP, { authorLogin: 'dora' });
    const { workflowId } = await h.startCi(APP, first);
    await h.waitForStatus(workflowId, (s) => s.awaitingApprovalFor === 'staging', 'the pipeline to wait for staging');

    const listed = await h.cli(['list', '--app', APP]);
    expect(listed.code).toBe(0);
    expect(listed.out[0]).toMatch(/^PIPELINE +APP +COMMIT +ENVIRONMENT +STATUS +WAITING FOR +STARTED$/);
    const row = listed.out.find((line) => line.startsWith(workflowId))!;
    expect(row).toMatch(new RegExp(`^${workflowId} +${APP} +${first.slice(0, 7)} +staging +AWAITING_APPROVAL +approval for staging +\\d{4}-`));

    expect((await h.cli(['approve', workflowId, '--environment', 'staging', '--approver', 'alice'])).code).toBe(0);
    await h.handle(workflowId).result();
    const status = await h.cli(['status', workflowId]);
    expect(status.out.find((line) => line.trim().startsWith('staging'))).toMatch(/DEPLOYED +charts [0-9a-f]{7}; approved by alice \(claimed\)/);

    const manual = await h.stack.merge(APP);
    expect((await h.cli(['start', '--app', APP, '--ref', manual, '--environment', 'staging', '--wait'])).code).toBe(6);
    const manualId = `deploy-${APP}-${manual}-staging-manual`;
    expect((await h.cli(['approve', manualId, '--environment', 'staging', '--approver', 'erin'])).code).toBe(0);
    await h.handle(manualId).result();

    const history = await h.cli(['history', '--app', APP, '--environment', 'staging']);
    expect(history.code).toBe(0);
    expect(history.out[0]).toMatch(/^WHEN +TAG +STATE +HOW +APPROVED BY +PIPELINE$/);
    expect(history.out.slice(1).map((line) => line.split(/ {2,}/).slice(1))).toEqual([
      [manual.slice(0, 7), 'DEPLOYED', 'by hand', 'erin (claimed)', manualId],
      [first.slice(0, 7), 'DEPLOYED', 'CI', 'alice (claimed)', workflowId],
    ]);
    const json = JSON.parse((await h.cli(['history', '--app', APP, '--environment', 'staging', '--json'])).out.join('\n')) as unknown[];
    expect(json).toHaveLength(2);
    expect((await h.cli(['history', '--app', APP, '--environment', 'production'])).out).toEqual([`nothing has run on production for ${APP} in the pipelines' records`]);
  });
});
