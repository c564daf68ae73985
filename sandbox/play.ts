import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs, parseEnv } from 'node:util';
import { runCli } from '../client/cli';
import { shortSha } from '../common/names';
import { CONTROL_FILE, type ControlFile } from './control';
import { DEFAULT_DATA_DIR } from './options';
import { DEPLOY_ENV_FILE } from './sandbox';

/**
 * `npm run sandbox -- <command>`: things a newcomer does to the running sandbox to see what the pipelines do
 * then. Changes to the simulated world go to the sandbox's control endpoint (control.json in its data folder);
 * decisions go through the deploy CLI's own code, with the sandbox's settings and signing key.
 */

export const PLAY_COMMAND = 'npm run sandbox --';

/** One line per command, as the sandbox prints them at start. */
export const PLAY_COMMANDS: ReadonlyArray<[usage: string, what: string]> = [
  ['merge <app>', 'merge a commit to the app; CI starts its pipeline'],
  ['break <app> <environment> [--rollout|--smoke]', "the app's next rollout there ends Degraded (default), or fails its smoke tests"],
  ['freeze <environment> [app]', 'automatic_deploys_enabled: false in the charts files (every app, or one)'],
  ['unfreeze <environment> [app]', 'automatic_deploys_enabled: true again'],
  ['clear-hold <app> <environment>', 'clear the hold a failed deploy left'],
  ['approve <pipeline> <environment> [--comment TEXT]', 'approve, signed as sandbox-approver'],
  ['reject <pipeline> <environment> --reason TEXT', 'reject, signed as sandbox-approver'],
];

export const PLAY_USAGE = `usage: ${PLAY_COMMAND} <command>     (while \`npm start\` runs)

${PLAY_COMMANDS.map(([usage, what]) => `  ${usage.padEnd(52)} ${what}`).join('\n')}

  --data-dir DIR   the sandbox's data folder (default $SANDBOX_DATA_DIR, else ${DEFAULT_DATA_DIR})

Exit codes: 0 done, 2 bad input (unknown command, app or environment), 5 no sandbox running; approve, reject and
clear-hold exit as the deploy CLI does (3 refused, 4 not found).`;

export const PlayExit = { Ok: 0, Failed: 1, BadInput: 2, NotRunning: 5 } as const;

export interface PlayIo {
  env: Record<string, string | undefined>;
  out: (line: string) => void;
  err: (line: string) => void;
  cwd?: string;
}

const OPTIONS = {
  'data-dir': { type: 'string' },
  rollout: { type: 'boolean' },
  smoke: { type: 'boolean' },
  comment: { type: 'string' },
  reason: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

class PlayError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The running sandbox of a data folder, or why there is none. */
function findSandbox(dataDir: string): ControlFile {
  const file = join(dataDir, CONTROL_FILE);
  const notRunning = `no sandbox is running on ${dataDir}: start one with \`npm start\` in another terminal (or name its folder with --data-dir)`;
  if (!existsSync(file)) throw new PlayError(PlayExit.NotRunning, notRunning);
  const control = JSON.parse(readFileSync(file, 'utf8')) as ControlFile;
  if (!isAlive(control.pid)) throw new PlayError(PlayExit.NotRunning, notRunning);
  return control;
}

async function ask(control: ControlFile, method: 'GET' | 'POST', path: string, body?: unknown): Promise<Record<string, unknown>> {
  let response: Response;
  try {
    response = await fetch(`${control.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${control.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (err) {
    throw new PlayError(PlayExit.NotRunning, `the sandbox does not answer at ${control.url} (${(err as Error).message}); is \`npm start\` still running?`);
  }
  const answer = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (response.ok) return answer;
  const message = typeof answer.message === 'string' ? answer.message : `HTTP ${response.status}`;
  throw new PlayError(response.status === 400 || response.status === 404 ? PlayExit.BadInput : PlayExit.Failed, message);
}

async function checkAppEnvironment(control: ControlFile, app: string, environment?: string): Promise<void> {
  const apps = (await ask(control, 'GET', '/apps')) as Record<string, string[]>;
  const environments = apps[app];
  if (!environments) throw new PlayError(PlayExit.BadInput, `unknown app "${app}" (the sandbox has: ${Object.keys(apps).join(', ')})`);
  if (environment !== undefined && !environments.includes(environment)) {
    throw new PlayError(PlayExit.BadInput, `app "${app}" has no environment "${environment}" (it has: ${environments.join(', ')})`);
  }
}

function positionalsFor(command: string, positionals: string[], count: number, optional = 0): string[] {
  if (positionals.length < count || positionals.length > count + optional) {
    const usage = PLAY_COMMANDS.find(([line]) => line.split(' ')[0] === command)?.[0] ?? command;
    throw new PlayError(PlayExit.BadInput, `usage: ${PLAY_COMMAND} ${usage}`);
  }
  return positionals;
}

/** A decision the deploy CLI's way: same checks, same proof, with the sandbox's settings file. */
async function runDeployCli(dataDir: string, args: string[], io: PlayIo): Promise<number> {
  const file = join(dataDir, DEPLOY_ENV_FILE);
  const settings = existsSync(file) ? (parseEnv(readFileSync(file, 'utf8')) as Record<string, string>) : {};
  return runCli(args, { env: { ...io.env, ...settings, DEPLOY_ENV_FILE: file }, out: io.out, err: io.err });
}

async function play(command: string, positionals: string[], values: ReturnType<typeof parse>['values'], dataDir: string, io: PlayIo): Promise<number> {
  switch (command) {
    case 'merge': {
      const [app] = positionalsFor(command, positionals, 1);
      const control = findSandbox(dataDir);
      const merged = await ask(control, 'POST', '/merge', { app });
      io.out(`merged ${shortSha(String(merged.sha))} to ${app}'s main; CI started ${merged.workflowId}`);
      io.out(`  ${merged.pipelineUrl}`);
      return PlayExit.Ok;
    }
    case 'break': {
      const [app, environment] = positionalsFor(command, positionals, 2);
      if (values.rollout && values.smoke) throw new PlayError(PlayExit.BadInput, 'give --rollout or --smoke, not both');
      const control = findSandbox(dataDir);
      const kind = values.smoke ? 'smoke' : 'rollout';
      await ask(control, 'POST', '/break', { app, environment, kind });
      io.out(
        kind === 'smoke'
          ? `${app}'s next rollout to ${environment} will fail its smoke tests: the pipeline rolls back and holds ${app} in ${environment}`
          : `${app}'s next rollout to ${environment} will end Degraded: the pipeline rolls back and holds ${app} in ${environment}`,
      );
      io.out(`  then: ${PLAY_COMMAND} merge ${app}  (it waits for the hold), ${PLAY_COMMAND} clear-hold ${app} ${environment}`);
      return PlayExit.Ok;
    }
    case 'freeze':
    case 'unfreeze': {
      const [environment, app] = positionalsFor(command, positionals, 1, 1);
      const control = findSandbox(dataDir);
      const changed = await ask(control, 'POST', `/${command}`, { environment, app });
      const apps = (changed.apps as string[]).join(', ');
      io.out(
        command === 'freeze'
          ? `froze automatic deploys of ${apps} to ${environment} (charts commit ${shortSha(String(changed.chartsCommit))}); manual deploys still go`
          : `automatic deploys of ${apps} to ${environment} are on again (charts commit ${shortSha(String(changed.chartsCommit))})`,
      );
      return PlayExit.Ok;
    }
    case 'clear-hold': {
      const [app, environment] = positionalsFor(command, positionals, 2);
      await checkAppEnvironment(findSandbox(dataDir), app!, environment);
      return runDeployCli(dataDir, ['hold', 'clear', '--app', app!, '--environment', environment!], io);
    }
    case 'approve':
    case 'reject': {
      const [pipeline, environment] = positionalsFor(command, positionals, 2);
      const control = findSandbox(dataDir);
      const app = /^deploy-(.+)-[0-9a-f]{40}(?:-.+-manual)?$/.exec(pipeline!)?.[1];
      if (!app) throw new PlayError(PlayExit.BadInput, `"${pipeline}" is not a pipeline ID (deploy-<app>-<sha>); \`npm run deploy -- list\` lists them`);
      await checkAppEnvironment(control, app, environment);
      if (command === 'reject' && !values.reason) throw new PlayError(PlayExit.BadInput, 'reject needs --reason TEXT');
      const text = command === 'approve' ? (values.comment ? ['--comment', values.comment] : []) : ['--reason', values.reason!];
      return runDeployCli(dataDir, [command, pipeline!, '--environment', environment!, ...text], io);
    }
    default:
      throw new PlayError(PlayExit.BadInput, `unknown command "${command}"\n${PLAY_USAGE}`);
  }
}

function parse(argv: string[]) {
  return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
}

export async function runPlay(argv: string[], io: PlayIo): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    io.err(`sandbox: ${(err as Error).message}`);
    return PlayExit.BadInput;
  }
  const [command, ...positionals] = parsed.positionals;
  if (parsed.values.help || command === 'help') {
    io.out(PLAY_USAGE);
    return PlayExit.Ok;
  }
  if (!command) {
    io.err(PLAY_USAGE);
    return PlayExit.BadInput;
  }
  const dataDir = resolve(io.cwd ?? process.cwd(), parsed.values['data-dir'] ?? (io.env.SANDBOX_DATA_DIR?.trim() || DEFAULT_DATA_DIR));
  try {
    return await play(command, positionals, parsed.values, dataDir, io);
  } catch (err) {
    if (err instanceof PlayError) {
      io.err(`sandbox: ${err.message}`);
      return err.code;
    }
    io.err(`sandbox: ${(err as Error).message}`);
    return PlayExit.Failed;
  }
}

if (require.main === module) {
  runPlay(process.argv.slice(2), {
    env: process.env,
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  }).then((code) => process.exit(code));
}
