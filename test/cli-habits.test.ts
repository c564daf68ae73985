/** The CLI as people and scripts use it: help that exits 0, a list with a header, status and history that say who decided. */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../client/cli';
import { shortSha } from '../common/names';
import { chartsWriter, imageTagPath, readFileAt } from '../simulators/charts-repo';
import { listCommits } from './support/charts-repo';
import { closedPort } from './support/env';
import { startHarness, type PipelineHarness } from './support/pipeline';
import { testAddress } from './support/temporal';

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

  /** The CLI with other settings than the harness's, on the same server and task queue. */
  async function runCliWith(env: Record<string, string>, args: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(args, { env: { ...env, DEPLOY_TASK_QUEUE: h.taskQueue, TEMPORAL_ADDRESS: testAddress() }, out: (l) => out.push(l), err: (l) => err.push(l), client: h.client });
    return { code, out, err };
  }

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

    // A person freezes staging by hand: only the charts log knows.
    const file = imageTagPath(h.stack.catalogue.chartsPath, APP, 'staging');
    const writer = await chartsWriter(h.stack.charts.bareDir, await mkdtemp(join(tmpdir(), 'cli-habits-writer-')));
    const before = (await readFileAt(h.stack.charts.bareDir, 'main', file))!;
    const frozen = /^automatic_deploys_enabled:/m.test(before)
      ? before.replace(/^automatic_deploys_enabled:.*$/m, 'automatic_deploys_enabled: false')
      : `${before.replace(/\n?$/, '\n')}automatic_deploys_enabled: false\n`;
    // Git keeps whole seconds: a commit in the second the deploy ended would sort beside it, either way.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const freeze = await writer.commitFiles({ [file]: frozen }, 'Freeze staging for the election');
    const initial = (await listCommits(h.stack.charts.bareDir)).at(-1)!.sha;

    const history = await h.cli(['history', '--app', APP, '--environment', 'staging']);
    expect(history.code).toBe(0);
    expect(history.out[0]).toMatch(/^WHEN +TAG +STATE +HOW +APPROVED BY +CHARTS +PIPELINE$/);
    const chartsOf = async (id: string) => shortSha((await h.status(id)).environments.find((e) => e.environment === 'staging')!.chartsCommit!);
    expect(history.out.slice(1).map((line) => line.split(/ {2,}/).slice(1))).toEqual([
      [manual.slice(0, 7), 'CHARTS COMMIT', 'charts commit by Charts Fixture', shortSha(freeze), 'Freeze staging for the election'],
      [manual.slice(0, 7), 'DEPLOYED', 'by hand', 'erin (claimed)', await chartsOf(manualId), manualId],
      [first.slice(0, 7), 'DEPLOYED', 'CI', 'alice (claimed)', await chartsOf(workflowId), workflowId],
      ['initial', 'CHARTS COMMIT', 'charts commit by Charts Fixture', shortSha(initial), 'Initial charts'],
    ]);
    // Without the charts repository's address, the pipelines' records alone.
    const recordsOnly = await runCliWith({ ...h.stack.env, CHARTS_REPO_URL: '' }, ['history', '--app', APP, '--environment', 'staging']);
    expect(recordsOnly.out.slice(1).map((line) => line.split(/ {2,}/)[2])).toEqual(['DEPLOYED', 'DEPLOYED']);
    const unreachable = await runCliWith({ ...h.stack.env, CHARTS_REPO_URL: join(tmpdir(), 'no-such-charts.git') }, ['history', '--app', APP, '--environment', 'staging']);
    expect(unreachable).toMatchObject({ code: 5, err: [expect.stringMatching(/^deploy: cannot read the charts repository's log: /)] });
    const json = JSON.parse((await h.cli(['history', '--app', APP, '--environment', 'staging', '--json'])).out.join('\n')) as unknown[];
    expect(json).toHaveLength(4);
    expect((await runCliWith({ ...h.stack.env, CHARTS_REPO_URL: '' }, ['history', '--app', APP, '--environment', 'production'])).out).toEqual([
      `nothing has run on production for ${APP} in the pipelines' records`,
    ]);
  });
});
