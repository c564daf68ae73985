/**
 * Bad input, table-driven, beyond test/bad-input.test.ts: the CLI, a DeployPipeline started directly, approve/reject
 * updates and signals, and the app catalogue. Every row gets one clear error, leaves no side effect (no charts commit,
 * release record or build dispatch, no pipeline started by the CLI, the pipeline awaiting approval still awaiting
 * it) and no crashed worker: the real worker process (worker/main.ts) keeps running and deploys good pipelines after.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WorkflowFailedError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { runCli } from '../client/cli';
import { startPipeline } from '../client/pipelines';
import type { PipelineStatus } from '../common/types';
import { startStack, type Stack } from '../sandbox/stack';
import { statusQuery } from '../workflows/definitions';
import { listCommits } from './support/charts-repo';
import { spawnWorker, stackWorkerEnv, WORKER_MAIN, type WorkerProcess } from './support/crash-harness';
import { waitFor } from './support/env';
import { connectClient, testAddress, testNamespace, uniqueTaskQueue } from './support/temporal';

const CYRILLIC_A = '\u0430';
const SHA_NOBODY_HAS = 'f'.repeat(40);

type Kind = 'cli' | 'workflow input' | 'update' | 'signal' | 'catalogue';

interface Row {
  kind: Kind;
  what: string;
  /** Does the bad thing; returns the one error it got (a message, a log line, …). */
  run: () => Promise<string>;
  expected: RegExp;
}

/** The error a promise ends with, as text; no error is itself a failure of the row. */
async function errorOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) return err.cause?.message ?? err.message;
    if (err instanceof WorkflowFailedError) return err.cause?.message ?? err.message;
    return (err as Error).message;
  }
  throw new Error('expected an error, got none');
}

describe('bad input table: one clear error, no side effect, no crashed worker', () => {
  let stack: Stack;
  let dataDir: string;
  let client: Client;
  let worker: WorkerProcess;
  const taskQueue = uniqueTaskQueue('bad-input');
  let awaitingId: string;
  let awaitingSha: string;
  let finishedId: string;
  let sideEffects: { commits: number; records: number; dispatches: number };
  const startedByRows: string[] = [];

  const cliEnv = () => ({ ...stack.env, TEMPORAL_ADDRESS: testAddress(), DEPLOY_TASK_QUEUE: taskQueue });
  async function cli(args: string[], env: Record<string, string> = cliEnv()): Promise<{ code: number; err: string[]; out: string[] }> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(args, { env, out: (l) => out.push(l), err: (l) => err.push(l), client, pollIntervalMs: 100 });
    return { code, out, err };
  }

  /** A CLI run that must exit with `code` and write exactly one line to stderr, which the row checks. */
  async function cliError(args: string[], code: number, env?: Record<string, string>): Promise<string> {
    const result = await cli(args, env);
    if (result.code !== code || result.err.length !== 1) {
      throw new Error(`deploy ${args.join(' ')}: exit ${result.code} (wanted ${code}), stderr ${JSON.stringify(result.err)}`);
    }
    return result.err[0]!;
  }

  async function catalogueError(text: string): Promise<string> {
    const file = path.join(dataDir, `apps-${Math.random().toString(16).slice(2)}.yaml`);
    await writeFile(file, text);
    const line = await cliError(['start', '--app', 'whitehall', '--ref', SHA_NOBODY_HAS], 2, { ...cliEnv(), DEPLOY_CATALOGUE: file });
    return line.replace(file, '<catalogue>');
  }

  /** A DeployPipeline started directly with `input`: it must fail at once. */
  async function workflowError(input: unknown): Promise<string> {
    const workflowId = `deploy-input-table-${Math.random().toString(16).slice(2)}`;
    startedByRows.push(workflowId);
    const handle = await client.workflow.start('DeployPipeline', { taskQueue, workflowId, args: [input], workflowExecutionTimeout: '1 minute' });
    return errorOf(handle.result());
  }

  function approveUpdate(workflowId: string, request: unknown): Promise<string> {
    return errorOf(client.workflow.getHandle(workflowId).executeUpdate('approve', { args: [request] }));
  }

  function rejectUpdate(workflowId: string, request: unknown): Promise<string> {
    return errorOf(client.workflow.getHandle(workflowId).executeUpdate('reject', { args: [request] }));
  }

  /** A refused signal cannot answer: its one error is the worker's warning that it ignored it. */
  async function signalWarning(name: 'approve' | 'reject', args: unknown[]): Promise<string> {
    const ignored = () => worker.lines.filter((line) => line.includes(`signal ignored`) && line.includes(awaitingId));
    const before = ignored().length;
    await client.workflow.getHandle(awaitingId).signal(name, ...(args as [unknown]));
    const lines = await waitFor(() => (ignored().length > before ? ignored().slice(before) : undefined), {
      timeoutMs: 15_000,
      description: `the worker to log the ignored ${name} signal`,
    });
    // Let a second warning (or a workflow task failure) show up if there were one.
    await waitFor(async () => (await client.workflow.getHandle(awaitingId).query(statusQuery)).status === 'AWAITING_APPROVAL', { timeoutMs: 5_000 });
    if (ignored().length - before !== 1) throw new Error(`expected one warning, got ${ignored().length - before}`);
    return (JSON.parse(lines[0]!) as { message: string; reason: string }).message + ': ' + (JSON.parse(lines[0]!) as { reason: string }).reason;
  }

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'deploy-bad-input-'));
    stack = await startStack({
      dataDir,
      apps: {
        whitehall: { environments: { integration: {}, staging: { continuousDeployment: false }, production: {} } },
        collections: { environments: { integration: {} } },
      },
    });
    client = await connectClient();
    worker = await spawnWorker(
      WORKER_MAIN,
      stackWorkerEnv(stack, { address: testAddress(), namespace: testNamespace(), taskQueue, chartsWorkdir: path.join(dataDir, 'charts-workdir') }),
    );
    const context = { client, taskQueue, catalogue: stack.catalogue, sourceHost: stack.dependencies.sourceHost };
    const finished = await startPipeline({ app: 'collections', ref: await stack.merge('collections'), requestedBy: 'ci' }, context);
    finishedId = finished.workflowId;
    expect((await client.workflow.getHandle(finishedId).result()).status).toBe('SUCCEEDED');
    awaitingSha = await stack.merge('whitehall');
    awaitingId = (await startPipeline({ app: 'whitehall', ref: awaitingSha, requestedBy: 'ci' }, context)).workflowId;
    await waitFor(async () => (await client.workflow.getHandle(awaitingId).query(statusQuery)).status === 'AWAITING_APPROVAL', {
      timeoutMs: 60_000,
      description: `${awaitingId} to await approval`,
    });
    sideEffects = await countSideEffects();
  }, 120_000);

  afterAll(async () => {
    await worker?.stop();
    await client?.connection.close();
    await stack?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  }, 60_000);

  async function countSideEffects(): Promise<{ commits: number; records: number; dispatches: number }> {
    return { commits: (await listCommits(stack.charts.bareDir)).length, records: stack.release.deployments.length, dispatches: stack.github.dispatches.length };
  }

  async function pipelinesOnQueue(): Promise<string[]> {
    const ids: string[] = [];
    for await (const w of client.workflow.list({ query: `TaskQueue = "${taskQueue}" AND WorkflowType = "DeployPipeline"` })) ids.push(w.workflowId);
    return ids;
  }

  const long = (n: number) => 'a'.repeat(n);
  const rows: Row[] = [
    // The CLI (bad-input.test.ts has unknown apps and environments, shell and path characters, unknown options).
    { kind: 'cli', what: 'app name with a Cyrillic "а"', run: () => cliError(['start', '--app', `whitehall`.replace('a', CYRILLIC_A), '--ref', 'main'], 2), expected: /^deploy: invalid app name "whiteh\u0430ll": use lower-case letters/ },
    { kind: 'cli', what: 'app name in capitals', run: () => cliError(['start', '--app', 'WHITEHALL', '--ref', 'main'], 2), expected: /^deploy: invalid app name "WHITEHALL": use lower-case letters/ },
    { kind: 'cli', what: 'app name of 300 characters', run: () => cliError(['start', '--app', long(300), '--ref', 'main'], 2), expected: /^deploy: invalid app name "a{60}…": .*at most 63 characters/ },
    { kind: 'cli', what: 'git ref of 300 characters', run: () => cliError(['start', '--app', 'whitehall', '--ref', long(300)], 2), expected: /^deploy: invalid git ref "a{60}…"/ },
    { kind: 'cli', what: 'git ref with a newline', run: () => cliError(['start', '--app', 'whitehall', '--ref', 'main\nrm -rf /'], 2), expected: /^deploy: invalid git ref "main\\nrm -rf \/"/ },
    { kind: 'cli', what: 'git ref climbing with ..', run: () => cliError(['start', '--app', 'whitehall', '--ref', 'refs/heads/../main'], 2), expected: /^deploy: invalid git ref "refs\/heads\/\.\.\/main"/ },
    { kind: 'cli', what: 'git ref ending in .lock', run: () => cliError(['start', '--app', 'whitehall', '--ref', 'main.lock'], 2), expected: /^deploy: invalid git ref "main\.lock"/ },
    { kind: 'cli', what: 'environment with a Cyrillic "а"', run: () => cliError(['start', '--app', 'whitehall', '--ref', 'main', '--environment', `st${CYRILLIC_A}ging`], 2), expected: /^deploy: invalid environment "st\u0430ging"/ },
    { kind: 'cli', what: '--until without --wait', run: () => cliError(['start', '--app', 'whitehall', '--ref', 'main', '--until', 'staging'], 2), expected: /^deploy: --until goes with --wait$/ },
    { kind: 'cli', what: '--until naming no environment of the app', run: () => cliError(['start', '--app', 'whitehall', '--ref', 'main', '--wait', '--until', 'prodution'], 2), expected: /^deploy: app "whitehall" has no environment "prodution" to wait for \(it has: integration, staging, production\)$/ },
    { kind: 'cli', what: 'approver with shell characters', run: () => cliError(['approve', `deploy-whitehall-${SHA_NOBODY_HAS}`, '--environment', 'staging', '--approver', 'alice;reboot'], 2), expected: /^deploy: invalid approver "alice;reboot"/ },
    { kind: 'cli', what: 'approver of 40 characters', run: () => cliError(['approve', `deploy-whitehall-${SHA_NOBODY_HAS}`, '--environment', 'staging', '--approver', long(40)], 2), expected: /^deploy: invalid approver "a{40}": .*at most 39 characters/ },
    { kind: 'cli', what: 'reject without --reason', run: () => cliError(['reject', `deploy-whitehall-${SHA_NOBODY_HAS}`, '--environment', 'staging', '--approver', 'alice'], 2), expected: /^deploy: --reason is required$/ },
    { kind: 'cli', what: 'reject with a blank reason', run: () => cliError(['reject', `deploy-whitehall-${SHA_NOBODY_HAS}`, '--environment', 'staging', '--approver', 'alice', '--reason', '   '], 2), expected: /^deploy: --reason is required$/ },
    { kind: 'cli', what: 'list --limit 0', run: () => cliError(['list', '--limit', '0'], 2), expected: /^deploy: --limit is a whole number from 1 to 1000$/ },
    { kind: 'cli', what: 'list --limit ten', run: () => cliError(['list', '--limit', 'ten'], 2), expected: /^deploy: --limit is a whole number from 1 to 1000$/ },
    { kind: 'cli', what: 'status of no pipeline named', run: () => cliError(['status'], 2), expected: /^deploy: name the pipeline: give its ID, or --app and --ref$/ },
    { kind: 'cli', what: 'hold with an unknown action', run: () => cliError(['hold', 'drop'], 2), expected: /^deploy: usage: deploy hold list\|clear$/ },
    { kind: 'cli', what: 'approve a pipeline that does not exist', run: () => cliError(['approve', `deploy-whitehall-${SHA_NOBODY_HAS}`, '--environment', 'staging', '--approver', 'alice'], 4), expected: /^deploy: no pipeline deploy-whitehall-f{40}$/ },
    { kind: 'cli', what: 'approve a finished pipeline', run: () => cliError(['approve', finishedId, '--environment', 'integration', '--approver', 'alice'], 3), expected: /^deploy: refused: pipeline deploy-collections-[0-9a-f]{40} has already finished: SUCCEEDED$/ },

    // DeployPipeline started directly (bad-input.test.ts has path and shell characters, an unknown app and environment, a bad trigger).
    { kind: 'workflow input', what: 'app name with a Cyrillic "а"', run: () => workflowError({ app: `whitehall`.replace('a', CYRILLIC_A), ref: 'main', sha: SHA_NOBODY_HAS, trigger: 'ci' }), expected: /^invalid app name "whiteh\u0430ll"/ },
    {
      kind: 'workflow input',
      what: 'a forged resume, as if the pipeline had continued as new (it would skip the checks and the approvals)',
      run: () => workflowError({ app: 'whitehall', ref: 'main', sha: SHA_NOBODY_HAS, trigger: 'ci', resume: { environmentIndex: 2, rolledBack: false, plan: {}, status: {} } }),
      expected: /^a pipeline is resumed only by its own continue-as-new, never started with "resume"$/,
    },
    { kind: 'workflow input', what: 'app name that is a number', run: () => workflowError({ app: 42, ref: 'main', sha: SHA_NOBODY_HAS, trigger: 'ci' }), expected: /^invalid app name a number/ },
    { kind: 'workflow input', what: 'app name of 5000 characters', run: () => workflowError({ app: long(5000), ref: 'main', sha: SHA_NOBODY_HAS, trigger: 'ci' }), expected: /^invalid app name "a{60}…"/ },
    { kind: 'workflow input', what: 'ref of 300 characters', run: () => workflowError({ app: 'whitehall', ref: long(300), sha: SHA_NOBODY_HAS, trigger: 'ci' }), expected: /^invalid git ref "a{60}…"/ },
    { kind: 'workflow input', what: 'ref that looks like an option', run: () => workflowError({ app: 'whitehall', ref: '--upload-pack=touch pwned', sha: SHA_NOBODY_HAS, trigger: 'ci' }), expected: /^invalid git ref "--upload-pack=touch pwned"/ },
    { kind: 'workflow input', what: 'manual deploy without an environment', run: () => workflowError({ app: 'whitehall', ref: 'main', sha: SHA_NOBODY_HAS, trigger: 'manual' }), expected: /^a manual deploy names the one environment to deploy$/ },
    { kind: 'workflow input', what: 'CI pipeline naming an environment', run: () => workflowError({ app: 'whitehall', ref: 'main', sha: SHA_NOBODY_HAS, trigger: 'ci', environment: 'staging' }), expected: /^a CI pipeline deploys every environment in order/ },
    { kind: 'workflow input', what: 'environment that is a list', run: () => workflowError({ app: 'whitehall', ref: 'main', sha: SHA_NOBODY_HAS, trigger: 'manual', environment: ['staging'] }), expected: /^invalid environment a object/ },
    { kind: 'workflow input', what: 'no input at all', run: () => workflowError(null), expected: /^a pipeline's input is \{"app", "ref", "trigger"/ },
    { kind: 'workflow input', what: 'trigger that is not text', run: () => workflowError({ app: 'whitehall', ref: 'main', sha: SHA_NOBODY_HAS, trigger: { ci: true } }), expected: /^trigger must be "ci" or "manual", not \{"ci":true\}$/ },
    { kind: 'workflow input', what: 'no commit SHA', run: () => workflowError({ app: 'whitehall', ref: 'main', trigger: 'ci' }), expected: /^the pipeline's input names no commit: "sha" must be the full commit SHA the client resolved "main" to/ },
    { kind: 'workflow input', what: 'a short commit SHA', run: () => workflowError({ app: 'whitehall', ref: 'main', sha: 'f'.repeat(12), trigger: 'ci' }), expected: /^invalid commit SHA "f{12}": "sha" is a full commit SHA, 40 lower-case hexadecimal characters$/ },
    { kind: 'workflow input', what: 'a branch name as the commit', run: () => workflowError({ app: 'whitehall', ref: 'main', sha: 'main', trigger: 'ci' }), expected: /^invalid commit SHA "main"/ },
    { kind: 'workflow input', what: 'a ref and a sha naming two commits', run: () => workflowError({ app: 'whitehall', ref: 'e'.repeat(40), sha: SHA_NOBODY_HAS, trigger: 'ci' }), expected: /^the input's ref is commit e{40} but its sha is f{40}: they must name the same commit$/ },
    { kind: 'workflow input', what: 'a commit the app\'s repo does not have', run: () => workflowError({ app: 'whitehall', ref: 'main', sha: SHA_NOBODY_HAS, trigger: 'ci' }), expected: /^GitHub repository alphagov\/whitehall has no commit f{40} \(what "main" was resolved to\)$/ },

    // Approve and reject updates to the pipeline awaiting approval for staging (and to others).
    { kind: 'update', what: 'approve with an environment that is a number', run: () => approveUpdate(awaitingId, { environment: 42, approver: 'alice' }), expected: /is awaiting approval for staging, not 42$/ },
    { kind: 'update', what: 'approve with an approver that is a number', run: () => approveUpdate(awaitingId, { environment: 'staging', approver: 123 }), expected: /^invalid approver a number/ },
    { kind: 'update', what: 'approve an unknown environment', run: () => approveUpdate(awaitingId, { environment: 'qa', approver: 'alice' }), expected: /is awaiting approval for staging, not qa$/ },
    { kind: 'update', what: 'approve an environment not yet reached', run: () => approveUpdate(awaitingId, { environment: 'production', approver: 'alice' }), expected: /is awaiting approval for staging, not production$/ },
    { kind: 'update', what: 'approver of 1000 characters', run: () => approveUpdate(awaitingId, { environment: 'staging', approver: long(1000) }), expected: /^invalid approver "a{60}…"/ },
    { kind: 'update', what: 'approver with a Cyrillic "а"', run: () => approveUpdate(awaitingId, { environment: 'staging', approver: `${CYRILLIC_A}lice` }), expected: /^invalid approver "\u0430lice"/ },
    { kind: 'update', what: 'approve with no request', run: () => approveUpdate(awaitingId, null), expected: /^an approval is \{"environment", "approver"/ },
    { kind: 'update', what: 'approve with a comment of 5000 characters', run: () => approveUpdate(awaitingId, { environment: 'staging', approver: 'alice', comment: long(5000) }), expected: /^the comment is longer than 1000 characters$/ },
    { kind: 'update', what: 'reject without a reason', run: () => rejectUpdate(awaitingId, { environment: 'staging', approver: 'bob' }), expected: /^a rejection gives a reason$/ },
    { kind: 'update', what: 'reject with a reason of 5000 characters', run: () => rejectUpdate(awaitingId, { environment: 'staging', approver: 'bob', reason: long(5000) }), expected: /^the reason is longer than 1000 characters$/ },
    { kind: 'update', what: 'an update nobody handles', run: () => errorOf(client.workflow.getHandle(awaitingId).executeUpdate('approval', { args: [{ environment: 'staging', approver: 'alice' }] })), expected: /approval/ },
    { kind: 'update', what: 'approve a pipeline that is not awaiting approval', run: () => approveUpdate(finishedId, { environment: 'integration', approver: 'alice' }), expected: /already completed|not found/i },

    // Signals (the Web UI's way) to the same pipeline: ignored, and the worker says why.
    { kind: 'signal', what: 'approve with an approver that is a number', run: () => signalWarning('approve', [{ environment: 'staging', approver: 42 }]), expected: /^approved signal ignored: invalid approver a number/ },
    { kind: 'signal', what: 'approve an unknown environment', run: () => signalWarning('approve', [{ environment: 'qa', approver: 'alice' }]), expected: /^approved signal ignored: .*awaiting approval for staging, not qa$/ },
    { kind: 'signal', what: 'approve with no payload', run: () => signalWarning('approve', []), expected: /^approved signal ignored: an approval is \{"environment", "approver"/ },
    { kind: 'signal', what: 'approver with a Cyrillic "а"', run: () => signalWarning('approve', [{ environment: 'staging', approver: `${CYRILLIC_A}lice` }]), expected: /^approved signal ignored: invalid approver "\u0430lice"/ },
    { kind: 'signal', what: 'reject without a reason', run: () => signalWarning('reject', [{ environment: 'staging', approver: 'bob' }]), expected: /^rejected signal ignored: a rejection gives a reason$/ },
    { kind: 'signal', what: 'approve with a comment of 5000 characters', run: () => signalWarning('approve', [{ environment: 'staging', approver: 'alice', comment: long(5000) }]), expected: /^approved signal ignored: the comment is longer than 1000 characters$/ },
    { kind: 'signal', what: 'approve a finished pipeline', run: () => errorOf(client.workflow.getHandle(finishedId).signal('approve', { environment: 'integration', approver: 'alice' })), expected: /already completed/i },

    // The app catalogue (catalogue.test.ts has bad YAML, repos, app names, unknown keys, smoke URLs, durations).
    { kind: 'catalogue', what: 'app name with a Cyrillic "а"', run: () => catalogueError(`apps:\n  wh${CYRILLIC_A}tehall:\n    repo: alphagov/whitehall\n`), expected: /^deploy: <catalogue>: field "apps\.wh\u0430tehall": invalid app name "wh\u0430tehall"/ },
    { kind: 'catalogue', what: 'app name of 100 characters', run: () => catalogueError(`apps:\n  ${long(100)}:\n    repo: alphagov/whitehall\n`), expected: /^deploy: <catalogue>: field "apps\.a{100}": invalid app name "a{60}…"/ },
    { kind: 'catalogue', what: 'empty file', run: () => catalogueError(''), expected: /^deploy: <catalogue>: top level: / },
    { kind: 'catalogue', what: 'stepRetry.maximumAttempts 0', run: () => catalogueError('defaults:\n  stepRetry: { maximumAttempts: 0 }\napps: {}\n'), expected: /^deploy: <catalogue>: field "defaults\.stepRetry\.maximumAttempts": Too small/ },
    { kind: 'catalogue', what: 'stepRetry.attemptTimeout 10ms', run: () => catalogueError('defaults:\n  stepRetry: { attemptTimeout: 10ms }\napps: {}\n'), expected: /^deploy: <catalogue>: field "defaults\.stepRetry\.attemptTimeout": must be at least 1s$/ },
    { kind: 'catalogue', what: 'chartsPath climbing out', run: () => catalogueError('defaults:\n  chartsPath: ../../etc/{app}/{environment}\napps: {}\n'), expected: /^deploy: <catalogue>: field "defaults\.chartsPath": must be a relative path/ },
    { kind: 'catalogue', what: 'tag scheme nobody knows', run: () => catalogueError('apps:\n  whitehall:\n    repo: alphagov/whitehall\n    tagScheme: semver\n'), expected: /^deploy: <catalogue>: app "whitehall": field "tagScheme": / },
    { kind: 'catalogue', what: 'release tag pattern that is no regular expression', run: () => catalogueError('apps:\n  whitehall:\n    repo: alphagov/whitehall\n    releaseTagPattern: "("\n'), expected: /^deploy: <catalogue>: app "whitehall": field "releaseTagPattern": must be a regular expression$/ },
    { kind: 'catalogue', what: 'build workflow outside .github/workflows', run: () => catalogueError('apps:\n  whitehall:\n    repo: alphagov/whitehall\n    build: { workflow: ../build.yml }\n'), expected: /^deploy: <catalogue>: app "whitehall": field "build\.workflow": must be a workflow file name/ },
    { kind: 'catalogue', what: 'approver with shell characters', run: () => catalogueError('apps:\n  whitehall:\n    repo: alphagov/whitehall\n    environments:\n      production: { approvers: ["alice; rm -rf /"] }\n'), expected: /^deploy: <catalogue>: app "whitehall": field "environments\.production\.approvers\[0\]": invalid approver/ },
    { kind: 'catalogue', what: 'Argo CD application name in capitals', run: () => catalogueError('apps:\n  whitehall:\n    repo: alphagov/whitehall\n    environments:\n      integration: { argocdApplication: Whitehall_Integration }\n'), expected: /^deploy: <catalogue>: app "whitehall": field "environments\.integration\.argocdApplication": must be a Kubernetes resource name$/ },
    { kind: 'catalogue', what: 'continuousDeployment "yes"', run: () => catalogueError('apps:\n  whitehall:\n    repo: alphagov/whitehall\n    environments:\n      staging: { continuousDeployment: "yes" }\n'), expected: /^deploy: <catalogue>: app "whitehall": field "environments\.staging\.continuousDeployment": / },
    { kind: 'catalogue', what: 'smokeAttempts 0', run: () => catalogueError('apps:\n  whitehall:\n    repo: alphagov/whitehall\n    environments:\n      staging: { smokeAttempts: 0 }\n'), expected: /^deploy: <catalogue>: app "whitehall": field "environments\.staging\.smokeAttempts": Too small/ },
    { kind: 'catalogue', what: 'deploy window ending before it starts', run: () => catalogueError('apps:\n  whitehall:\n    repo: alphagov/whitehall\n    environments:\n      production: { deployWindows: [{ from: "17:00", to: "09:00" }] }\n'), expected: /^deploy: <catalogue>: app "whitehall": field "environments\.production\.deployWindows\[0\]\.to": must be later than "from"/ },
    { kind: 'catalogue', what: 'deploy window in a time zone that does not exist', run: () => catalogueError('apps:\n  whitehall:\n    repo: alphagov/whitehall\n    environments:\n      production: { deployWindows: [{ from: "09:00", to: "17:00", timezone: Mars/Olympus_Mons }] }\n'), expected: /^deploy: <catalogue>: app "whitehall": field "environments\.production\.deployWindows\[0\]\.timezone": unknown time zone "Mars\/Olympus_Mons"$/ },
  ];

  it('has at least 30 rows of every kind', () => {
    expect(rows.length).toBeGreaterThanOrEqual(30);
    for (const kind of ['cli', 'workflow input', 'update', 'signal', 'catalogue'] as const) expect(rows.filter((r) => r.kind === kind).length).toBeGreaterThanOrEqual(5);
  });

  it.each(rows.map((row) => [`${row.kind}: ${row.what}`, row] as const))('%s', async (_name, row) => {
    const message = await row.run();
    expect(message).toMatch(row.expected);
    // No side effect, and the pipeline awaiting approval still awaits it, with no decision recorded.
    expect(await countSideEffects()).toEqual(sideEffects);
    const status: PipelineStatus = await client.workflow.getHandle(awaitingId).query(statusQuery);
    expect(status).toMatchObject({ status: 'AWAITING_APPROVAL', awaitingApprovalFor: 'staging' });
    expect(status.environments[1]).not.toHaveProperty('approval');
    expect(status.environments[1]).not.toHaveProperty('rejection');
    expect(worker.running).toBe(true);
  });

  it('started no pipeline but the rows that start one on purpose, and no workflow task failed', async () => {
    const started = await pipelinesOnQueue();
    expect(started.filter((id) => id !== awaitingId && id !== finishedId && !startedByRows.includes(id))).toEqual([]);
    for (const id of [awaitingId, ...startedByRows]) {
      const history = await client.workflow.getHandle(id).fetchHistory();
      const failedTasks = history.events!.filter((e) => e.workflowTaskFailedEventAttributes).map((e) => e.workflowTaskFailedEventAttributes!.failure?.message);
      expect({ id, failedTasks }).toEqual({ id, failedTasks: [] });
    }
  });

  it('the worker that refused all this deploys good pipelines; a second approval is refused and changes nothing', async () => {
    expect(worker.running).toBe(true);
    const receipt = await client.workflow.getHandle(awaitingId).executeUpdate('approve', { args: [{ environment: 'staging', approver: 'alice', comment: 'fine' }] });
    expect(receipt).toMatchObject({ environment: 'staging', approver: 'alice', decision: 'approved' });
    expect(await approveUpdate(awaitingId, { environment: 'staging', approver: 'carol' })).toBe('staging was already approved by alice');
    expect((await cli(['approve', awaitingId, '--environment', 'staging', '--approver', 'dave'])).err).toEqual(['deploy: refused: staging was already approved by alice']);
    const result = await client.workflow.getHandle(awaitingId).result();
    expect(result.status).toBe('SUCCEEDED');
    expect(result.environments[1]!.approval).toMatchObject({ by: 'alice', comment: 'fine' });
    const commits = await listCommits(stack.charts.bareDir);
    for (const env of ['staging', 'production']) {
      expect(commits.filter((c) => c.subject === `Deploy whitehall ${awaitingSha} to ${env}`)).toHaveLength(1);
      expect(stack.release.deployments.filter((d) => d.version === awaitingSha && d.environment === env)).toHaveLength(1);
    }
    const next = await cli(['start', '--app', 'collections', '--ref', await stack.merge('collections'), '--wait']);
    expect(next.code).toBe(0);
    expect(worker.running).toBe(true);
  });

  it('a worker given a bad catalogue refuses to start, with one line naming the file, the app and the field', async () => {
    const file = path.join(dataDir, 'worker-apps.yaml');
    await writeFile(file, 'apps:\n  whitehall:\n    repo: alphagov/whitehall\n    environments:\n      staging: { syncTimeout: "15 minutes" }\n');
    const env = stackWorkerEnv(
      stack,
      { address: testAddress(), namespace: testNamespace(), taskQueue: uniqueTaskQueue('bad-catalogue'), chartsWorkdir: path.join(dataDir, 'charts-workdir-bad') },
      { DEPLOY_CATALOGUE: file },
    );
    const refused = await spawnWorker(WORKER_MAIN, env, false);
    await refused.exited;
    expect(refused.child.exitCode).toBe(2);
    const errors = refused.lines.filter((line) => line.includes('"level":"ERROR"'));
    expect(errors).toHaveLength(1);
    expect(JSON.parse(errors[0]!).message).toBe(
      `deploy worker: ${file}: app "whitehall": field "environments.staging.syncTimeout": duration "15 minutes" must look like 250ms, 30s, 15m, 2h or 7d`,
    );
  });
});
