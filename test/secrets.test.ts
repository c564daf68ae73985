/**
 * DESIGN.md §4: secrets never appear in logs, workflow inputs or histories. The real worker process (worker/main.ts,
 * DEBUG logs) runs pipelines that succeed, wait for approval (telling Slack through the Web API with the bot
 * token), build an image and fail on a wrong token (a 401 from GitHub, Argo CD and the release app; Slack's
 * invalid_auth, which a pipeline outlives); then every place a secret could leak to is searched for every token value:
 * each workflow's full history (payloads decoded), its search attributes, summaries and status, the workers' output,
 * the CLI's output and the failing pipelines' error messages.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { runCli } from '../client/cli';
import { startPipeline } from '../client/pipelines';
import { startStack, type Stack } from '../sandbox/stack';
import { statusQuery } from '../workflows/definitions';
import { spawnWorker, stackWorkerEnv, WORKER_MAIN, type WorkerProcess } from './support/crash-harness';
import { waitFor } from './support/env';
import { connectClient, testAddress, testNamespace, uniqueTaskQueue } from './support/temporal';

/** A wrong one of these fails the pipeline. */
const TOKEN_NAMES = ['GITHUB_TOKEN', 'ARGOCD_TOKEN', 'RELEASE_TOKEN'] as const;
/** Every secret the worker is given; a wrong Slack token only costs the message. */
const SECRET_NAMES = [...TOKEN_NAMES, 'SLACK_BOT_TOKEN'] as const;
type SecretName = (typeof SECRET_NAMES)[number];
/** Wrong tokens are secrets too: a 401 must not echo what was sent. */
const WRONG: Record<SecretName, string> = {
  GITHUB_TOKEN: 'ghs_WRONGgithubTOKENvalue0123456789',
  ARGOCD_TOKEN: 'argo-WRONGargocdTOKENvalue0123456789',
  RELEASE_TOKEN: 'rel-WRONGreleaseTOKENvalue0123456789',
  SLACK_BOT_TOKEN: 'xoxb-9876543210-WRONGslackTOKENvalue0123456789',
};

/**
 * JSON with every payload written out as text (histories carry payload bytes as base64 `data`, search attributes
 * too), so that a secret inside a payload is found.
 */
function serialise(value: unknown): string {
  return JSON.stringify(value, (key, field: unknown) => {
    if (field instanceof Uint8Array) return Buffer.from(field).toString('utf8');
    if (key === 'data' && typeof field === 'string') return Buffer.from(field, 'base64').toString('utf8');
    if (typeof field === 'bigint') return field.toString();
    return field;
  });
}

describe('secrets stay out of histories, search attributes, logs and errors', () => {
  let stack: Stack;
  let dataDir: string;
  let client: Client;
  const workers: WorkerProcess[] = [];
  const goodQueue = uniqueTaskQueue('secrets');
  const wrongQueues = Object.fromEntries(SECRET_NAMES.map((name) => [name, uniqueTaskQueue(`secrets-wrong-${name.split('_')[0]!.toLowerCase()}`)])) as Record<SecretName, string>;

  function workerEnv(taskQueue: string, overrides: Record<string, string> = {}): Record<string, string> {
    const where = { address: testAddress(), namespace: testNamespace(), taskQueue, chartsWorkdir: path.join(dataDir, `charts-workdir-${taskQueue}`) };
    return stackWorkerEnv(stack, where, { DEPLOY_LOG_LEVEL: 'DEBUG', ...overrides });
  }

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'deploy-secrets-'));
    stack = await startStack({
      dataDir,
      apps: {
        'secret-approval': { environments: { integration: {}, staging: { continuousDeployment: false } } },
        'secret-build': { environments: { integration: {} } },
      },
      stepRetry: { maximumAttempts: 2, maximumInterval: '1s' },
    });
    client = await connectClient();
    const started = await Promise.allSettled([
      spawnWorker(WORKER_MAIN, workerEnv(goodQueue)),
      ...SECRET_NAMES.map((name) => spawnWorker(WORKER_MAIN, workerEnv(wrongQueues[name], { [name]: WRONG[name] }))),
    ]);
    for (const outcome of started) if (outcome.status === 'fulfilled') workers.push(outcome.value);
    const failed = started.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) throw failed.reason;
  }, 120_000);

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await client?.connection.close();
    await stack?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  }, 60_000);

  it('no token value, right or wrong, appears anywhere', async () => {
    const cliOutput: string[] = [];
    const cli = async (args: string[], env: Record<string, string> = {}) => {
      const code = await runCli(args, {
        env: { ...stack.env, DEPLOY_TASK_QUEUE: goodQueue, ...env },
        out: (line) => cliOutput.push(line),
        err: (line) => cliOutput.push(line),
        client,
        pollIntervalMs: 100,
      });
      return code;
    };
    const secrets = SECRET_NAMES.map((name) => stack.env[name]!);
    expect(new Set(secrets).size).toBe(SECRET_NAMES.length);
    expect(stack.env.SLACK_BOT_TOKEN).toMatch(/^xoxb-/);

    // Succeeds after an approval given through the CLI (an update), with a refused one sent as a signal before it.
    const approvalSha = await stack.merge('secret-approval', { authorLogin: 'someone' });
    expect(await cli(['start', '--app', 'secret-approval', '--ref', approvalSha, '--wait'])).toBe(6);
    const approvalId = `deploy-secret-approval-${approvalSha}`;
    await client.workflow.getHandle(approvalId).signal('approve', { environment: 'production', approver: 'bob' });
    expect(await cli(['approve', approvalId, '--environment', 'staging', '--approver', 'alice', '--comment', 'looks fine'])).toBe(0);
    expect((await client.workflow.getHandle(approvalId).result()).status).toBe('SUCCEEDED');
    // The approval message went to Slack with the bot token.
    expect(stack.slack.channelMessages(stack.env.SLACK_CHANNEL!).filter((m) => m.text.includes(approvalId))).toHaveLength(1);

    // Builds its image first; then a manual deploy of a branch name.
    const buildSha = await stack.merge('secret-build', { buildImage: false });
    expect(await cli(['start', '--app', 'secret-build', '--ref', buildSha, '--wait'])).toBe(0);
    expect(await cli(['start', '--app', 'secret-build', '--ref', 'main', '--environment', 'integration', '--wait', '--json'])).toBe(0);
    expect(await cli(['status', `deploy-secret-build-${buildSha}`])).toBe(0);
    expect(await cli(['list', '--app', 'secret-build', '--json'])).toBe(0);

    // Each wrong token: GitHub refuses the resolve, Argo CD the sync wait, the release app the record.
    const failures: string[] = [];
    const failedIds: string[] = [];
    for (const name of TOKEN_NAMES) {
      const app = name === 'GITHUB_TOKEN' ? 'secret-build' : 'secret-approval';
      const sha = await stack.merge(app);
      const { workflowId } = await startPipeline({ app, ref: sha, requestedBy: 'ci' }, { client, taskQueue: wrongQueues[name], catalogue: stack.catalogue });
      failedIds.push(workflowId);
      const error = await client.workflow.getHandle(workflowId).result().then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(WorkflowFailedError);
      const failure = error as WorkflowFailedError;
      failures.push(serialise({ message: failure.message, cause: failure.cause?.message, stack: failure.cause?.stack, name: failure.cause?.name }));
      expect(await cli(['status', workflowId])).toBe(0);
    }
    expect(failures[0]).toMatch(/GitHub GET http:\/\/127\.0\.0\.1:\d+\/repos\/alphagov\/secret-build\/commits\/[0-9a-f]{40}\S* returned 401: Bad credentials/);
    expect(failures[1]).toMatch(/Argo CD GET http:\/\/127\.0\.0\.1:\d+\/api\/v1\/applications\/secret-approval-integration\S* returned 401/);
    expect(failures[2]).toMatch(/Release app POST http:\/\/127\.0\.0\.1:\d+\/deployments returned 401: Unauthorized/);

    // A wrong Slack token: Slack answers invalid_auth, the message is lost and the pipeline waits for approval.
    const slackSha = await stack.merge('secret-approval');
    const slackFailed = await startPipeline({ app: 'secret-approval', ref: slackSha, requestedBy: 'ci' }, { client, taskQueue: wrongQueues.SLACK_BOT_TOKEN, catalogue: stack.catalogue });
    failedIds.push(slackFailed.workflowId);
    const slackWarning = (line: string) => line.includes('could not notify people') && line.includes(slackFailed.workflowId);
    await waitFor(() => workers.some((w) => w.lines.some(slackWarning)), { timeoutMs: 30_000, description: 'the pipeline to go on without its Slack message' });
    expect((await client.workflow.getHandle(slackFailed.workflowId).query(statusQuery)).status).toBe('AWAITING_APPROVAL');
    await client.workflow.getHandle(slackFailed.workflowId).terminate('wrong Slack token seen');

    // Everything Temporal keeps about every workflow of these task queues: pipelines and lanes.
    const histories: string[] = [];
    const attributes: string[] = [];
    const queues = [goodQueue, ...Object.values(wrongQueues)];
    const query = queues.map((q) => `TaskQueue = "${q}"`).join(' OR ');
    const ids: string[] = [];
    for await (const execution of client.workflow.list({ query })) ids.push(execution.workflowId);
    // Visibility is eventually consistent; every pipeline started here must be in the list.
    await waitFor(
      async () => {
        ids.length = 0;
        for await (const execution of client.workflow.list({ query })) ids.push(execution.workflowId);
        return [approvalId, `deploy-secret-build-${buildSha}`, ...failedIds].every((id) => ids.includes(id));
      },
      { timeoutMs: 20_000, description: 'every pipeline to be listed' },
    );
    expect(ids.filter((id) => id.startsWith('lane/')).length).toBeGreaterThan(0);
    for (const id of ids) {
      const handle = client.workflow.getHandle(id);
      histories.push(serialise(await handle.fetchHistory()));
      const description = await handle.describe();
      attributes.push(
        serialise({
          typed: description.typedSearchAttributes,
          raw: description.raw.workflowExecutionInfo?.searchAttributes,
          memo: description.memo,
          summary: await description.staticSummary(),
          details: await description.staticDetails(),
          status: id.startsWith('deploy-') ? await handle.query(statusQuery) : undefined,
        }),
      );
    }
    const logs = workers.flatMap((w) => w.lines);

    // The corpora hold what they should (so that an absence means something).
    const historyText = histories.join('\n');
    expect(historyText).toContain('returned 401');
    expect(historyText).toContain('Slack chat.postMessage failed: invalid_auth');
    expect(historyText).toContain('looks fine');
    expect(attributes.join('\n')).toContain('SUCCEEDED');
    expect(logs.some((line) => line.includes('"level":"DEBUG"'))).toBe(true);
    expect(logs.some((line) => line.includes('returned 401'))).toBe(true);
    expect(logs.some((line) => line.includes('Slack chat.postMessage failed: invalid_auth'))).toBe(true);
    expect(cliOutput.join('\n')).toContain('approved staging');

    const corpora: Record<string, string> = {
      histories: historyText,
      'search attributes, summaries and status': attributes.join('\n'),
      'worker output': logs.join('\n'),
      'CLI output': cliOutput.join('\n'),
      'error messages': failures.join('\n'),
    };
    const named: Array<[string, string]> = [
      ...SECRET_NAMES.map((name, index): [string, string] => [name, secrets[index]!]),
      ...SECRET_NAMES.map((name): [string, string] => [`wrong ${name}`, WRONG[name]]),
    ];
    const leaksIn = (places: Record<string, string>): string[] => {
      const leaks: string[] = [];
      for (const [where, text] of Object.entries(places)) {
        for (const [name, secret] of named) {
          // The token, and its random part alone (a prefix may have been cut off).
          const random = secret.replace(/^[a-z]+[-_]/, '');
          if (text.includes(secret) || text.includes(random)) leaks.push(`${where}: ${name}`);
        }
      }
      return leaks;
    };
    // The search itself finds a token, whole or without its prefix, and in a payload.
    expect(leaksIn({ probe: `x ${secrets[0]!.slice(4)} y`, payload: serialise({ data: Buffer.from(`"${WRONG.RELEASE_TOKEN}"`).toString('base64') }) })).toEqual([
      'probe: GITHUB_TOKEN',
      'payload: wrong RELEASE_TOKEN',
    ]);
    expect(leaksIn(corpora)).toEqual([]);
  }, 240_000);
});
