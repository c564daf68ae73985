#!/usr/bin/env node
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs, parseEnv } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { createGitHubSourceHost } from '../adapters';
import { CatalogueError, loadCatalogue, type Catalogue } from '../common/catalogue';
import { ciWorkflowId, isFullSha, shortSha, validateAppName, validateEnvironmentName, validateGitRef } from '../common/names';
import { DEFAULT_CATALOGUE_PATH, taskQueueFrom, temporalConnectConfig, type Env } from '../common/settings';
import { FINAL_STATUSES, type DecisionProof, type PipelineStatus } from '../common/types';
import { helpFor, USAGE } from './help';
import { proveStatement, type ProofSource } from './proofs';
import {
  approvePipeline,
  BadInputError,
  cancelPipeline,
  clearHold,
  listHolds,
  listPipelines,
  NotFoundError,
  pipelineStatus,
  RefusedError,
  rejectPipeline,
  startPipeline,
  environmentHistory,
  UnreachableError,
  waitingFor,
  type EnvironmentRun,
} from './pipelines';
import { readChartsLog, withChartsLog } from './charts-history';

export const SANDBOX_ENV_FILE = '.data/sandbox/deploy.env';

/** Exit codes CI can act on. */
export const ExitCode = {
  Ok: 0,
  PipelineUnsuccessful: 1,
  BadInput: 2,
  Refused: 3,
  NotFound: 4,
  Unavailable: 5,
  AwaitingApproval: 6,
} as const;

export interface CliIo {
  env: Env;
  out: (line: string) => void;
  err: (line: string) => void;
  /** Injected by tests and the sandbox; otherwise the CLI connects with the SDK's environment configuration. */
  client?: Client;
  /** How often --wait looks at the pipeline. */
  pollIntervalMs?: number;
}



const OPTIONS = {
  app: { type: 'string' },
  ref: { type: 'string' },
  environment: { type: 'string' },
  approver: { type: 'string' },
  comment: { type: 'string' },
  reason: { type: 'string' },
  status: { type: 'string' },
  limit: { type: 'string' },
  until: { type: 'string' },
  'requested-by': { type: 'string' },
  'sign-with': { type: 'string' },
  'oidc-token': { type: 'string' },
  'allow-unmerged': { type: 'boolean' },
  wait: { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

class Session {
  private clientPromise?: Promise<Client>;
  private catalogueLoaded = false;
  private catalogueValue?: Catalogue;

  constructor(private readonly io: CliIo) {}

  client(): Promise<Client> {
    if (this.io.client) return Promise.resolve(this.io.client);
    this.clientPromise ??= (async () => {
      const { connectionOptions, namespace } = temporalConnectConfig(this.io.env);
      const connection = await Connection.connect(connectionOptions as Parameters<typeof Connection.connect>[0]);
      return new Client({ connection, namespace });
    })();
    return this.clientPromise;
  }

  /** The catalogue is optional for the CLI: CI with a full SHA needs none; the worker checks again. */
  catalogue(): Catalogue | undefined {
    if (!this.catalogueLoaded) {
      this.catalogueLoaded = true;
      const path = this.io.env.DEPLOY_CATALOGUE?.trim() || DEFAULT_CATALOGUE_PATH;
      if (this.io.env.DEPLOY_CATALOGUE || existsSync(path)) this.catalogueValue = loadCatalogue(path);
    }
    return this.catalogueValue;
  }

  async close(): Promise<void> {
    if (this.io.client || !this.clientPromise) return;
    // A connection that never opened has nothing to close, and its error has already been reported with its exit code.
    const client = await this.clientPromise.catch(() => undefined);
    await client?.connection.close();
  }
}

function required(values: Values, name: keyof Values): string {
  const value = values[name];
  if (typeof value !== 'string' || value.trim() === '') throw new BadInputError(`--${name} is required`);
  return value;
}

async function pipelineId(values: Values, positionals: string[], session: Session, io: CliIo): Promise<string> {
  if (positionals[0]) {
    if (!/^deploy-[a-z0-9-]+-[0-9a-f]{40}(-[a-z0-9-]+-manual)?$/.test(positionals[0])) {
      throw new BadInputError(`"${positionals[0]}" is not a pipeline ID (deploy-<app>-<sha>[-<environment>-manual])`);
    }
    return positionals[0];
  }
  if (!values.app || !values.ref) throw new BadInputError('name the pipeline: give its ID, or --app and --ref');
  const catalogue = session.catalogue();
  const app = validateAppName(values.app);
  const ref = validateGitRef(values.ref);
  if (isFullSha(ref)) return ciWorkflowId(app, ref);
  const config = catalogue?.apps.get(app);
  if (!config || !io.env.GITHUB_TOKEN) throw new BadInputError(`"${ref}" is not a full commit SHA; give the pipeline ID instead`);
  const host = createGitHubSourceHost({ token: io.env.GITHUB_TOKEN, baseUrl: io.env.GITHUB_API_URL || 'https://api.github.com' });
  return ciWorkflowId(app, await host.resolveRef(config.repo, ref));
}

function proofSource(values: Values, env: Env): ProofSource {
  const oidcToken = values['oidc-token'] ?? (env.DEPLOY_OIDC_TOKEN?.trim() || undefined);
  // The settings' key is DEPLOY_USER's: deciding as someone else takes their own key (--sign-with).
  const settingsKeyApplies = values.approver === undefined || values.approver === env.DEPLOY_USER;
  const signingKey = values['sign-with'] ?? (settingsKeyApplies ? env.DEPLOY_SIGNING_KEY?.trim() || undefined : undefined);
  if (values['oidc-token'] && values['sign-with']) throw new BadInputError('give --sign-with or --oidc-token, not both');
  return oidcToken ? { oidcToken } : { signingKey };
}

function approverFrom(values: Values, env: Env): string {
  const fromActions = proofSource(values, env).oidcToken ? (env.GITHUB_TRIGGERING_ACTOR ?? env.GITHUB_ACTOR) : undefined;
  const approver = values.approver ?? env.DEPLOY_USER ?? fromActions ?? env.USER;
  if (!approver) throw new BadInputError('--approver is required (or set DEPLOY_USER)');
  return approver;
}

/** States in which an environment waits for something, and its status says what. */
const WAITING_STATES = new Set(['AWAITING_APPROVAL', 'WAITING_FOR_LANE', 'FROZEN', 'OUTSIDE_WINDOW']);

/** Columns padded to their widest cell, a header first. */
function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)));
  return [header, ...rows].map((row) => row.map((cellText, i) => cellText.padEnd(widths[i]!)).join('  ').trimEnd());
}

function statusTable(status: PipelineStatus): string[] {
  const lines = [`${status.workflowId}: ${status.status}${status.sha ? ` (${status.app} ${shortSha(status.sha)}, tag ${status.tag})` : ''}`];
  for (const env of status.environments) {
    const extra = [
      env.chartsCommit ? `charts ${shortSha(env.chartsCommit)}` : '',
      env.approval ? `approved by ${env.approval.by} (${env.approval.channel ?? 'claimed'})` : '',
      env.rejection ? `rejected by ${env.rejection.by} (${env.rejection.channel ?? 'claimed'}): ${env.rejection.comment ?? ''}` : '',
      WAITING_STATES.has(env.state) ? (env.waitingFor ?? '') : '',
      env.refusedDecision && env.state === 'AWAITING_APPROVAL' ? `last decision refused: ${env.refusedDecision.reason}` : '',
      env.error ?? '',
    ].filter(Boolean);
    lines.push(`  ${env.environment.padEnd(14)} ${env.state.padEnd(18)} ${extra.join('; ')}`.trimEnd());
  }
  if (status.failure) lines.push(`  failure: ${status.failure}`);
  return lines;
}

/** Follows a pipeline, printing a line whenever it or one of its environments changes state, until it ends, waits for approval, or reaches `until`. */
async function follow(client: Client, workflowId: string, until: string | undefined, io: CliIo): Promise<{ status: PipelineStatus; code: number }> {
  const startedAt = Date.now();
  const seen = new Map<string, string>();
  const printed = new Map<string, number>();
  const say = (at: number, where: string, what: string): void => {
    io.err(`[${`${(Math.max(0, at - startedAt) / 1000).toFixed(1)}s`.padStart(7)}] ${where.padEnd(12)} ${what}`);
  };
  for (;;) {
    const status = await pipelineStatus(client, workflowId);
    for (const env of status.environments) {
      // Transitions carry their own times, so steps shorter than the polling interval still get their line.
      const transitions = env.transitions ?? [];
      for (const transition of transitions.slice(printed.get(env.environment) ?? 0)) {
        say(Date.parse(transition.at), env.environment, transition.state);
        seen.set(env.environment, transition.state);
      }
      printed.set(env.environment, transitions.length);
      // Final states (rolled back, superseded, …) and waiting reasons are not transitions of their own.
      const current = env.state + (env.waitingFor ? ` (${env.waitingFor})` : '');
      if (env.state !== 'PENDING' && seen.get(env.environment) !== current) {
        say(Date.now(), env.environment, current);
        seen.set(env.environment, current);
      }
    }
    if (seen.get('') !== status.status && !['OUTSIDE_WINDOW', 'WAITING_FOR_LANE', 'FROZEN', 'DEPLOYING', 'WAITING_FOR_SYNC', 'SMOKE_TESTING', 'AWAITING_APPROVAL'].includes(status.status)) {
      say(Date.now(), 'pipeline', status.status + (status.failure ? `: ${status.failure}` : ''));
    }
    seen.set('', status.status);
    const reached = until !== undefined && status.environments.some((e) => e.environment === until && e.state === 'DEPLOYED');
    if (reached || status.status === 'SUCCEEDED') return { status, code: ExitCode.Ok };
    if (FINAL_STATUSES.includes(status.status)) return { status, code: ExitCode.PipelineUnsuccessful };
    if (status.status === 'AWAITING_APPROVAL') return { status, code: ExitCode.AwaitingApproval };
    await new Promise((resolve) => setTimeout(resolve, io.pollIntervalMs ?? 300));
  }
}

/**
 * The sandbox writes its connection settings (Temporal, task queue, catalogue, GitHub simulator) to a file;
 * the CLI reads it only when it would talk to the default local Temporal anyway, so it never mixes sandbox
 * settings into a real cluster's. Real environment variables win.
 */
export function withSandboxSettings(env: Env): Env {
  if (env.TEMPORAL_ADDRESS || env.TEMPORAL_PROFILE || env.TEMPORAL_CONFIG_FILE) return env;
  const file = env.DEPLOY_ENV_FILE || SANDBOX_ENV_FILE;
  if (!existsSync(file)) return env;
  const fromFile = parseEnv(readFileSync(file, 'utf8')) as Record<string, string>;
  const merged: Env = { ...fromFile };
  for (const [name, value] of Object.entries(env)) if (value !== undefined) merged[name] = value;
  return merged;
}

/** `--until` must name an environment the pipeline deploys, or --wait would follow it to its end instead. */
function untilRefusal(until: string, appName: string | undefined, environment: string | undefined, catalogue: Catalogue | undefined): void {
  validateEnvironmentName(until);
  const app = appName ? catalogue?.apps.get(appName) : undefined;
  if (!app) return;
  const deployed = environment ? [environment] : app.environments.map((e) => e.name);
  if (deployed.includes(until)) return;
  if (environment) throw new BadInputError(`a manual deploy to ${environment} never reaches ${until}; --until names an environment it deploys`);
  throw new BadInputError(`app "${app.name}" has no environment "${until}" to wait for (it has: ${deployed.join(', ')})`);
}

async function run(command: string, values: Values, positionals: string[], session: Session, io: CliIo): Promise<number> {
  const print = (human: string[], machine: unknown): void => {
    if (values.json) io.out(JSON.stringify(machine, null, 2));
    else human.forEach((line) => io.out(line));
  };
  switch (command) {
    case 'start': {
      const catalogue = session.catalogue();
      const token = io.env.GITHUB_TOKEN;
      const sourceHost = token ? createGitHubSourceHost({ token, baseUrl: io.env.GITHUB_API_URL || 'https://api.github.com' }) : undefined;
      if (values.until && !values.wait) throw new BadInputError('--until goes with --wait');
      if (values.until) untilRefusal(values.until, values.app, values.environment, catalogue);
      if (values['allow-unmerged'] && !values.environment) throw new BadInputError('--allow-unmerged goes with a manual deploy (--environment)');
      const source = proofSource(values, io.env);
      const requestedBy = values['requested-by'] ?? (source.oidcToken || source.signingKey ? approverFrom(values, io.env) : undefined);
      const started = await startPipeline(
        {
          app: required(values, 'app'),
          ref: required(values, 'ref'),
          environment: values.environment,
          requestedBy,
          allowUnmerged: values['allow-unmerged'],
          prove: (about) => proveStatement(source, { ...about, decision: 'deploy' }),
        },
        { client: await session.client(), taskQueue: taskQueueFrom(io.env), catalogue, sourceHost },
      );
      if (!values.wait) {
        print([`${started.started ? 'started' : 'already running'}: ${started.workflowId}`], started);
        return ExitCode.Ok;
      }
      const followed = await follow(await session.client(), started.workflowId, values.until, io);
      print(statusTable(followed.status), { ...started, result: followed.status });
      return followed.code;
    }
    case 'approve':
    case 'reject': {
      const id = await pipelineId(values, positionals, session, io);
      const client = await session.client();
      const environment = required(values, 'environment');
      const approver = approverFrom(values, io.env);
      const text = command === 'approve' ? values.comment : required(values, 'reason');
      const proof = await decisionProof(client, id, { environment, decision: command, comment: text }, proofSource(values, io.env));
      const receipt =
        command === 'approve'
          ? await approvePipeline(client, id, { environment, approver, comment: text, proof })
          : await rejectPipeline(client, id, { environment, approver, reason: text!, proof });
      const how = receipt.channel === 'claimed' ? '' : ` (verified: ${receipt.channel})`;
      print([`${receipt.decision} ${receipt.environment} for ${id} as ${receipt.approver}${how}`], receipt);
      return ExitCode.Ok;
    }
    case 'status': {
      const status = await pipelineStatus(await session.client(), await pipelineId(values, positionals, session, io));
      print(statusTable(status), status);
      return ExitCode.Ok;
    }
    case 'list': {
      const limit = values.limit === undefined ? undefined : Number(values.limit);
      if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > 1000)) throw new BadInputError('--limit is a whole number from 1 to 1000');
      const client = await session.client();
      const rows = await listPipelines(client, { app: values.app, status: values.status, environment: values.environment, limit });
      if (values.json) {
        print([], rows);
        return ExitCode.Ok;
      }
      const waiting = await Promise.all(rows.map((r) => waitingFor(client, r)));
      print(
        table(
          ['PIPELINE', 'APP', 'COMMIT', 'ENVIRONMENT', 'STATUS', 'WAITING FOR', 'STARTED'],
          rows.map((r, i) => [r.workflowId, r.app ?? '', r.commit ? shortSha(r.commit) : '', r.environment ?? '', r.status ?? r.temporalStatus, waiting[i]!, r.startTime]),
        ),
        rows,
      );
      return ExitCode.Ok;
    }
    case 'history': {
      const limit = values.limit === undefined ? undefined : Number(values.limit);
      if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > 200)) throw new BadInputError('--limit is a whole number from 1 to 200');
      const app = required(values, 'app');
      const environment = required(values, 'environment');
      const recorded = await environmentHistory(await session.client(), { app, environment, limit });
      // The charts log, where the CLI can read the repository: it also shows what people changed by hand.
      const chartsUrl = io.env.CHARTS_REPO_URL?.trim();
      const runs = chartsUrl
        ? withChartsLog(
            recorded,
            await readChartsLog({ remoteUrl: chartsUrl, branch: io.env.CHARTS_BRANCH?.trim() || undefined, chartsPath: session.catalogue()?.chartsPath }, app, environment, limit ?? 20),
            limit ?? 20,
          )
        : recorded;
      const where = chartsUrl ? "in the pipelines' records or the charts repository's log" : "in the pipelines' records";
      const how = (r: EnvironmentRun): string => (r.trigger === 'charts' ? `charts commit by ${r.author}` : r.trigger === 'manual' ? 'by hand' : 'CI');
      print(
        runs.length === 0
          ? [`nothing has run on ${environment} for ${app} ${where}`]
          : table(
              ['WHEN', 'TAG', 'STATE', 'HOW', 'APPROVED BY', 'CHARTS', 'PIPELINE'],
              runs.map((r) => [
                r.at,
                r.tag && /^[0-9a-f]{40}$/.test(r.tag) ? shortSha(r.tag) : (r.tag ?? ''),
                r.state,
                how(r),
                r.approvedBy ? `${r.approvedBy} (${r.channel})` : '',
                r.chartsCommit ? shortSha(r.chartsCommit) : '',
                r.pipeline,
              ]),
            ),
        runs,
      );
      return ExitCode.Ok;
    }
    case 'cancel': {
      const id = await pipelineId(values, positionals, session, io);
      await cancelPipeline(await session.client(), id);
      print([`cancellation requested for ${id}`], { workflowId: id, cancelRequested: true });
      return ExitCode.Ok;
    }
    case 'hold': {
      const [action] = positionals;
      if (action === 'list') {
        const holds = await listHolds(await session.client(), { taskQueue: taskQueueFrom(io.env), app: values.app, environment: values.environment });
        print(
          holds.length === 0 ? ['no holds'] : holds.map((h) => `${h.app} ${h.environment}: ${h.reason} (set by ${h.setBy} at ${h.setAt})`),
          holds,
        );
        return ExitCode.Ok;
      }
      if (action === 'clear') {
        const cleared = await clearHold(await session.client(), {
          taskQueue: taskQueueFrom(io.env),
          app: required(values, 'app'),
          environment: required(values, 'environment'),
          by: approverFrom(values, io.env),
          prove: (about) => proveStatement(proofSource(values, io.env), { ...about, decision: 'clear-hold' }),
        });
        print([`cleared the hold on ${values.app} in ${values.environment}: ${cleared.reason}`], cleared);
        return ExitCode.Ok;
      }
      throw new BadInputError('usage: deploy hold list|clear');
    }
    default:
      throw new BadInputError(`unknown command "${command}"\n${USAGE}`);
  }
}

/** The proof for a decision: what the statement names comes from the pipeline itself (its commit). */
async function decisionProof(
  client: Client,
  pipelineId: string,
  about: { environment: string; decision: 'approve' | 'reject'; comment?: string },
  source: ProofSource,
): Promise<DecisionProof | undefined> {
  if (!source.oidcToken && !source.signingKey) return undefined;
  const commit = source.signingKey ? (await pipelineStatus(client, pipelineId)).sha : undefined;
  if (source.signingKey && !commit) throw new RefusedError(`pipeline ${pipelineId} has not resolved its commit yet; try again in a moment`);
  return proveStatement(source, { pipelineId, environment: about.environment, commit: commit ?? '', decision: about.decision, comment: about.comment });
}

function isUnavailable(err: unknown): boolean {
  const text = `${(err as Error)?.name} ${(err as Error)?.message}`;
  return /TransportError|ServiceError|ECONNREFUSED|UNAVAILABLE|Failed to connect|connection refused|ENOTFOUND/i.test(text);
}

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    io.err(`deploy: ${(err as Error).message}`);
    return ExitCode.BadInput;
  }
  const [command, ...positionals] = parsed.positionals;
  // Asking for help is not bad input: `deploy --help` and `deploy help` exit 0; plain `deploy` is a mistake.
  if (parsed.values.help || command === 'help') {
    io.out(helpFor(command === 'help' ? positionals[0] : command));
    return ExitCode.Ok;
  }
  if (!command) {
    io.err(USAGE);
    return ExitCode.BadInput;
  }
  io = { ...io, env: withSandboxSettings(io.env) };
  const session = new Session(io);
  try {
    return await run(command, parsed.values, positionals, session, io);
  } catch (err) {
    const message = (err as Error).message?.split('\n')[0] ?? String(err);
    if (err instanceof BadInputError || err instanceof CatalogueError || (err as Error).name === 'InvalidNameError') {
      io.err(`deploy: ${(err as Error).message}`);
      return ExitCode.BadInput;
    }
    if (err instanceof RefusedError) {
      io.err(`deploy: refused: ${message}`);
      return ExitCode.Refused;
    }
    if (err instanceof NotFoundError) {
      io.err(`deploy: ${message}`);
      return ExitCode.NotFound;
    }
    if (err instanceof UnreachableError) {
      io.err(`deploy: ${message}`);
      return ExitCode.Unavailable;
    }
    if (isUnavailable(err)) {
      io.err(`deploy: cannot reach the service: ${message}`);
      return ExitCode.Unavailable;
    }
    io.err(`deploy: ${message}`);
    return ExitCode.PipelineUnsuccessful;
  } finally {
    await session.close();
  }
}

if (require.main === module) {
  runCli(process.argv.slice(2), {
    env: process.env,
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  }).then((code) => process.exit(code));
}
