/**
 * `npm run sandbox -- <command>` against one running sandbox (started in this process, as `npm start` would,
 * on free ports and a temporary data folder): each command does what it says to the simulated world, and the
 * pipelines react as they would to the real thing.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { readDeliveryMetrics, readDeployAttempts } from '../client/delivery-records';
import type { DeployAttempt } from '../common/delivery-metrics';
import { listHolds, pipelineStatus } from '../client/pipelines';
import { ciWorkflowId } from '../common/names';
import type { PipelineStatus } from '../common/types';
import { freePort } from '../harness/free-ports';
import { parseSandboxOptions, PORT_SETTINGS } from '../sandbox/options';
import { runPlay } from '../sandbox/play';
import { startSandbox, type Sandbox } from '../sandbox/sandbox';
import { waitFor } from './support/env';
import { workflowBundlePath } from './support/temporal';

interface PlayResult {
  code: number;
  out: string;
  err: string;
}

describe('npm run sandbox -- <command>', () => {
  let dataDir: string;
  let sandbox: Sandbox;

  const play = async (...argv: string[]): Promise<PlayResult> => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runPlay(argv, { env: { SANDBOX_DATA_DIR: dataDir }, out: (line) => out.push(line), err: (line) => err.push(line) });
    return { code, out: out.join('\n'), err: err.join('\n') };
  };
  const ok = async (...argv: string[]): Promise<string> => {
    const result = await play(...argv);
    if (result.code !== 0) throw new Error(`sandbox ${argv.join(' ')} exited ${result.code}: ${result.err}`);
    return result.out;
  };
  const merge = async (app: string): Promise<string> => {
    const out = await ok('merge', app);
    const id = /CI started (deploy-\S+)/.exec(out)?.[1];
    if (!id) throw new Error(`no pipeline in: ${out}`);
    return id;
  };
  const until = (id: string, done: (status: PipelineStatus) => boolean, description: string) =>
    waitFor(
      async () => {
        const status = await pipelineStatus(sandbox.client, id);
        return done(status) ? status : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 250, description: `${id}: ${description}` },
    );
  const stateOf = (status: PipelineStatus, environment: string) => status.environments.find((e) => e.environment === environment)?.state;
  const holdsOf = (app: string, environment: string) => listHolds(sandbox.client, { taskQueue: sandbox.taskQueue, app, environment });

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'sandbox-play-'));
    const ports = PORT_SETTINGS.flatMap((p) => [`--${p.flag}`, '0']);
    for (let i = 1; i < ports.length; i += 2) ports[i] = String(await freePort());
    const parsed = parseSandboxOptions(['--data-dir', dataDir, '--no-samples', '--ecr', 'simulator', '--delays', '0', ...ports], {});
    if (parsed.help) throw new Error('unexpected --help');
    sandbox = await startSandbox({ ...parsed.options, print: () => undefined, workflowBundlePath: workflowBundlePath() });
  });

  afterAll(async () => {
    await sandbox?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('says so when no sandbox runs on the data folder', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'sandbox-none-'));
    try {
      const out: string[] = [];
      const code = await runPlay(['merge', 'whitehall'], { env: { SANDBOX_DATA_DIR: empty }, out: () => undefined, err: (line) => out.push(line) });
      expect(code).toBe(5);
      expect(out.join('\n')).toContain(`no sandbox is running on ${empty}: start one with \`npm start\``);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  it('refuses unknown commands, apps and environments, naming what there is', async () => {
    expect(await play('deploy-everything')).toMatchObject({ code: 2, err: expect.stringContaining('unknown command "deploy-everything"') });
    expect(await play('merge', 'nope')).toMatchObject({ code: 2, err: 'sandbox: unknown app "nope" (the sandbox has: whitehall, content-publisher)' });
    expect(await play('break', 'whitehall', 'qa')).toMatchObject({ code: 2, err: 'sandbox: app "whitehall" has no environment "qa" (it has: integration, staging, production)' });
    expect(await play('freeze', 'qa')).toMatchObject({ code: 2, err: expect.stringContaining('no app of the sandbox has an environment "qa"') });
    expect(await play('clear-hold', 'nope', 'staging')).toMatchObject({ code: 2, err: expect.stringContaining('unknown app "nope"') });
    expect(await play('approve', `deploy-whitehall-${'a'.repeat(40)}`, 'qa')).toMatchObject({ code: 2, err: expect.stringContaining('no environment "qa"') });
    expect(await play('merge')).toMatchObject({ code: 2, err: 'sandbox: usage: npm run sandbox -- merge <app>' });
    expect((await play('--help')).out).toContain('break <app> <environment> [--rollout|--smoke]');
  });

  it('merge: a new commit on main, and its pipeline started as CI would', async () => {
    const id = await merge('whitehall');
    const sha = id.replace('deploy-whitehall-', '');
    expect(id).toBe(ciWorkflowId('whitehall', sha));
    expect(sandbox.stack.github.getCommitRecord(sandbox.stack.repoOf('whitehall'), sha)?.message).toMatch(/^Merge pull request #\d+ from developer\/change-\d+/);
    expect(sandbox.stack.github.branchTip(sandbox.stack.repoOf('whitehall'), 'main')).toBe(sha);
    const done = await until(id, (s) => s.status === 'SUCCEEDED', 'SUCCEEDED');
    expect(done.environments.map((e) => [e.environment, e.state, e.tag])).toEqual([
      ['integration', 'DEPLOYED', sha],
      ['staging', 'DEPLOYED', sha],
      ['production', 'DEPLOYED', sha],
    ]);
  });

  it('break --rollout: the next rollout there is Degraded, rolled back and held; clear-hold lifts the hold', async () => {
    expect(await ok('break', 'whitehall', 'staging')).toContain("whitehall's next rollout to staging will end Degraded");
    const id = await merge('whitehall');
    const ended = await until(id, (s) => s.status === 'ROLLED_BACK', 'ROLLED_BACK');
    expect(stateOf(ended, 'integration')).toBe('DEPLOYED');
    expect(stateOf(ended, 'staging')).toBe('ROLLED_BACK');
    expect(ended.failure).toContain('broken on purpose');
    expect(await holdsOf('whitehall', 'staging')).toHaveLength(1);

    expect(await ok('clear-hold', 'whitehall', 'staging')).toContain('cleared the hold on whitehall in staging');
    expect(await holdsOf('whitehall', 'staging')).toEqual([]);
    // Only the next rollout was broken: the one after reaches production.
    const next = await merge('whitehall');
    const restored = await until(next, (s) => s.status === 'SUCCEEDED', 'SUCCEEDED');
    expect(stateOf(restored, 'production')).toBe('DEPLOYED');

    // The deploy, the rollback and the restore, in the delivery metrics from the pipelines' records.
    const staging = (await readDeliveryMetrics(sandbox.client, { taskQueue: sandbox.taskQueue, catalogue: sandbox.stack.catalogue })).find(
      (row) => row.app === 'whitehall' && row.environment === 'staging',
    );
    const rolledBack = ended.environments.find((e) => e.environment === 'staging')!;
    const redeployed = restored.environments.find((e) => e.environment === 'staging')!;
    expect(staging).toMatchObject({ deployments: 2, failures: 1, changeFailureRate: 1 / 3, restores: 1 });
    expect(staging!.failingSince).toBeUndefined();
    const restoreSeconds = (Date.parse(redeployed.finishedAt!) - Date.parse(rolledBack.transitions!.filter((t) => t.state === 'DEPLOYING').pop()!.at)) / 1000;
    expect(staging!.timeToRestoreSeconds).toBeCloseTo(restoreSeconds, 3);
    const page = (await (await fetch(sandbox.releaseUrl)).text()).replace(/\s+/g, ' ');
    const row = /<tr data-app="whitehall" data-environment="staging">(.*?)<\/tr>/.exec(page)?.[1]?.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();
    expect(row).toMatch(/^whitehall staging 2 0\.07 \S+( \S+)? 33% \(1 of 3\) \S+( \S+)? \(1 restored\)$/);
  });

  it('break --smoke: the next rollout there fails its smoke tests, rolls back and holds; the old version passes again', async () => {
    expect(await ok('break', 'whitehall', 'integration', '--smoke')).toContain('will fail its smoke tests');
    const before = sandbox.stack.argoOf('integration').currentTag('whitehall', 'integration');
    const id = await merge('whitehall');
    const ended = await until(id, (s) => s.status === 'ROLLED_BACK', 'ROLLED_BACK');
    expect(stateOf(ended, 'integration')).toBe('ROLLED_BACK');
    expect(stateOf(ended, 'staging')).toBe('PENDING');
    expect(sandbox.stack.argoOf('integration').currentTag('whitehall', 'integration')).toBe(before);
    const healthcheck = await fetch(sandbox.stack.endpoints.healthcheckUrl('whitehall', 'integration'));
    expect(healthcheck.status).toBe(200);
    expect(await holdsOf('whitehall', 'integration')).toHaveLength(1);
    await ok('clear-hold', 'whitehall', 'integration');
  });

  it('freeze and unfreeze: a charts commit that stops automatic deploys there, and one that lets them go on', async () => {
    const path = 'charts/app-config/image-tags/staging/whitehall';
    expect(await ok('freeze', 'staging', 'whitehall')).toMatch(/^froze automatic deploys of whitehall to staging \(charts commit [0-9a-f]{7}\)/);
    const frozenFile = parseYaml((await sandbox.stack.charts.readFile(path))!) as Record<string, unknown>;
    expect(frozenFile).toMatchObject({ automatic_deploys_enabled: false, promote_deployment: true });
    expect(typeof frozenFile.image_tag).toBe('string');

    const id = await merge('whitehall');
    const frozen = await until(id, (s) => stateOf(s, 'staging') === 'FROZEN', 'staging FROZEN');
    expect(frozen.environments.find((e) => e.environment === 'staging')?.waitingFor).toContain('automatic_deploys_enabled: false');

    expect(await ok('unfreeze', 'staging')).toContain('automatic deploys of whitehall, content-publisher to staging are on again');
    expect(parseYaml((await sandbox.stack.charts.readFile(path))!)).toMatchObject({ automatic_deploys_enabled: true });
    expect(stateOf(await until(id, (s) => s.status === 'SUCCEEDED', 'SUCCEEDED'), 'production')).toBe('DEPLOYED');
  });

  it('reads a pipeline\'s record again only once it has moved: never a closed one, a running one when its status changes', async () => {
    // A pipeline that waits for approval, with integration deployed: running, with a record.
    const waiting = await merge('content-publisher');
    await until(waiting, (s) => s.awaitingApprovalFor === 'staging', 'awaiting approval for staging');
    // Visibility follows a little behind: the list must show the state the pipeline stays in.
    const listedAwaiting = `WorkflowId = "${waiting}" AND DeployStatus = "AWAITING_APPROVAL"`;
    await waitFor(async () => (await sandbox.client.workflow.count(listedAwaiting)).count === 1 || undefined, { description: `${waiting} listed as awaiting approval` });
    const seen = new Map<string, { state: string; attempts: DeployAttempt[] }>();
    const first = await readDeployAttempts(sandbox.client, { taskQueue: sandbox.taskQueue, seen });
    const [closedKey, closed] = [...seen.entries()].find(([, read]) => !read.state.startsWith('running') && read.attempts.length > 0)!;
    expect(first).toEqual(expect.arrayContaining(closed.attempts));
    const [stillKey, still] = [...seen.entries()].find(([key]) => key.startsWith(`${waiting}/`))!;
    expect(still.state).toMatch(/^running /);
    expect(still.attempts).toEqual([expect.objectContaining({ environment: 'integration', outcome: 'deployed' })]);
    // What is remembered for a run that has not moved stands for it: Temporal is not asked about it again.
    const remembered = (pipeline: string): DeployAttempt => ({ ...closed.attempts[0]!, pipeline, startedAt: '2026-01-01T00:00:00Z' });
    seen.set(closedKey, { ...closed, attempts: [remembered('remembered closed')] });
    seen.set(stillKey, { ...still, attempts: [remembered('remembered running')] });
    const second = await readDeployAttempts(sandbox.client, { taskQueue: sandbox.taskQueue, seen });
    expect(second).toContainEqual(remembered('remembered closed'));
    expect(second).not.toContainEqual(closed.attempts[0]);
    expect(second).toContainEqual(remembered('remembered running'));
    // A run remembered at another state is read again.
    seen.set(stillKey, { state: 'running at another state', attempts: [remembered('stale')] });
    const third = await readDeployAttempts(sandbox.client, { taskQueue: sandbox.taskQueue, seen });
    expect(third).not.toContainEqual(remembered('stale'));
    expect(third).toEqual(expect.arrayContaining(still.attempts));
    expect(seen.get(stillKey)!.state).toBe(still.state);
    await sandbox.client.workflow.getHandle(waiting).cancel();
    await until(waiting, (s) => s.status === 'CANCELLED', 'CANCELLED');
  });

  it('approve and reject: signed as the sandbox person, through the CLI', async () => {
    const id = await merge('content-publisher');
    await until(id, (s) => s.awaitingApprovalFor === 'staging', 'awaiting approval for staging');
    const shipping = async () => {
      const page = await (await fetch(sandbox.releaseUrl)).text();
      const found = /<tr data-workflow-id="([^"]+)">.*?<td class="would-ship">(.*?)<\/td>/.exec(page);
      return [found?.[1], found?.[2]?.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim()];
    };
    expect(await shipping()).toEqual([id, 'Nothing recorded in staging yet: the first deploy there.']);
    expect(await ok('approve', id, 'staging', '--comment', 'looks fine')).toBe(`approved staging for ${id} as sandbox-approver (verified: ssh-signature)`);
    await until(id, (s) => s.awaitingApprovalFor === 'production', 'awaiting approval for production');
    expect(await play('reject', id, 'production')).toMatchObject({ code: 2, err: 'sandbox: reject needs --reason TEXT' });
    expect(await ok('reject', id, 'production', '--reason', 'not today')).toBe(`rejected production for ${id} as sandbox-approver (verified: ssh-signature)`);
    const ended = await until(id, (s) => s.status === 'REJECTED', 'REJECTED');
    expect(ended.environments.find((e) => e.environment === 'staging')?.approval).toMatchObject({ by: 'sandbox-approver', channel: 'ssh-signature', comment: 'looks fine' });

    // The next release's approval for staging: the release app page lists the commit it would ship, from GitHub's compare.
    const next = await merge('content-publisher');
    await until(next, (s) => s.awaitingApprovalFor === 'staging', 'awaiting approval for staging');
    const title = sandbox.stack.github.getCommitRecord(sandbox.stack.repoOf('content-publisher'), next.replace('deploy-content-publisher-', ''))!.message.split('\n')[0];
    const pull = /#(\d+)/.exec(title!)![1];
    expect(await shipping()).toEqual([next, `1 commit would go to staging ${next.slice(-40, -33)} ${title} by developer #${pull}`]);
  });
});
