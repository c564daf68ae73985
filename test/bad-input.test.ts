import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { runCli } from '../client/cli';
import { listCommits } from './support/charts-repo';
import { startHarness, type PipelineHarness } from './support/pipeline';
import { stepsInHistory } from './support/history-steps';

describe('bad input: one clear error and no side effect', () => {
  let h: PipelineHarness;
  let chartsCommits: number;
  beforeAll(async () => {
    h = await startHarness({ apps: { whitehall: {} } });
    await h.stack.merge('whitehall');
    chartsCommits = (await listCommits(h.stack.charts.bareDir)).length;
  });
  afterAll(async () => h?.close());

  async function expectNoSideEffect(): Promise<void> {
    expect((await listCommits(h.stack.charts.bareDir)).length).toBe(chartsCommits);
    expect(h.stack.release.deployments).toHaveLength(0);
    expect(h.stack.github.dispatches).toHaveLength(0);
    const started = [];
    for await (const w of h.client.workflow.list({ query: `TaskQueue = "${h.taskQueue}"` })) started.push(w.workflowId);
    return expect(started.filter((id) => !id.includes('-input-check-'))).toEqual([]);
  }

  it.each([
    [['start', '--app', 'whitehal', '--ref', 'main'], /^deploy: unknown app "whitehal": it is not in the app catalogue .*apps\.yaml$/],
    [['start', '--app', 'whitehall', '--ref', 'main;rm -rf /'], /^deploy: invalid git ref "main;rm -rf \/"/],
    [['start', '--app', 'whitehall', '--ref', '--upload-pack=x'], /^deploy: /],
    [['start', '--app', 'whitehall', '--ref', 'main', '--environment', 'prod'], /^deploy: app "whitehall" has no environment "prod" \(it has: integration, staging, production\)$/],
    [['start', '--app', '../whitehall', '--ref', 'main'], /^deploy: invalid app name "\.\.\/whitehall"/],
    [['start', '--app', 'whitehall$(id)', '--ref', 'main'], /^deploy: invalid app name/],
    [['start', '--app', 'whitehall', '--ref', 'main', '--environment', '../../etc'], /^deploy: invalid environment "\.\.\/\.\.\/etc"/],
    [['start', '--app', 'whitehall', '--ref', 'no-such-branch'], /^deploy: GitHub repository alphagov\/whitehall has no branch, tag or commit "no-such-branch"$/],
    [['start', '--app', 'whitehall'], /^deploy: --ref is required$/],
    [['start', '--app', 'whitehall', '--ref', 'main', '--colour', 'red'], /^deploy: Unknown option '--colour'/],
    [['launch', '--app', 'whitehall'], /^deploy: unknown command "launch"/],
    [['list', '--status', 'DONE'], /^deploy: unknown status "DONE" \(one of: RESOLVING, .*CANCELLED\)$/],
    [['list', '--app', 'x" OR WorkflowId != "'], /^deploy: invalid app name/],
    [['approve', 'deploy-whitehall-main', '--environment', 'staging'], /^deploy: "deploy-whitehall-main" is not a pipeline ID/],
  ])('deploy %j → exit 2', async (args, message) => {
    const result = await h.cli(args);
    expect(result.code).toBe(2);
    expect(result.err).toHaveLength(1);
    expect(result.err[0]).toMatch(message);
    await expectNoSideEffect();
  });

  it('says when a pipeline does not exist', async () => {
    const result = await h.cli(['status', `deploy-whitehall-${'0'.repeat(40)}`]);
    expect(result).toMatchObject({ code: 4, err: [`deploy: no pipeline deploy-whitehall-${'0'.repeat(40)}`] });
  });

  it('refuses a malformed catalogue, naming the file and the line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bad-catalogue-'));
    const file = join(dir, 'apps.yaml');
    await writeFile(file, 'apps:\n  whitehall:\n    repo: alphagov/whitehall\n   environments: [\n');
    const err: string[] = [];
    const code = await runCli(['start', '--app', 'whitehall', '--ref', 'a'.repeat(40)], { env: { DEPLOY_CATALOGUE: file }, out: () => undefined, err: (l) => err.push(l), client: h.client });
    expect(code).toBe(2);
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(new RegExp(`^deploy: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid YAML at line \\d+`));
    await expectNoSideEffect();
  });

  it.each([
    [{ app: '../etc', ref: 'main', sha: 'a'.repeat(40), trigger: 'ci' }, /^invalid app name "\.\.\/etc"/],
    [{ app: 'whitehall', ref: 'main`reboot`', sha: 'a'.repeat(40), trigger: 'ci' }, /^invalid git ref/],
    [{ app: 'unknown-app', ref: 'main', sha: 'a'.repeat(40), trigger: 'ci' }, /^unknown app "unknown-app"/],
    [{ app: 'whitehall', ref: 'main', sha: 'a'.repeat(40), trigger: 'manual', environment: 'qa' }, /^app "whitehall" has no environment "qa"/],
    [{ app: 'whitehall', ref: 'main', sha: 'a'.repeat(40), trigger: 'deploy-everything' }, /^trigger must be "ci" or "manual"/],
    [{ app: 'whitehall', ref: 'main', sha: 'a'.repeat(40), trigger: 'ci' }, /^GitHub repository \S+ has no commit a{40} \(what "main" was resolved to\)$/],
  ])('a workflow started directly with %j fails at once, before any side effect', async (input, message) => {
    const handle = await h.client.workflow.start('DeployPipeline', {
      taskQueue: h.taskQueue,
      workflowId: `deploy-input-check-${Math.random().toString(16).slice(2)}`,
      args: [input],
    });
    const error = await handle.result().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect((error as WorkflowFailedError).cause?.message).toMatch(message);
    const history = await handle.fetchHistory();
    // Resolving fails once, without retries; the only other step is telling people it failed.
    const steps = stepsInHistory(history.events!);
    expect(steps.map((s) => s.activityType)).toEqual(['resolveRelease', 'notifyPeople']);
    expect(steps.map((s) => s.attempt)).toEqual([1, 1]);
    await expectNoSideEffect();
  });
});
