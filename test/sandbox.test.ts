/**
 * `npm start` end to end: the sandbox's main as a child process, with a temporary data folder and free
 * ports. The first start brings a continuous-deployment app to production and leaves the other awaiting
 * approval within a minute; Ctrl-C stops everything; a second start resumes where the first stopped.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { promisify, parseEnv } from 'node:util';
import ts from 'typescript';
import { ensurePortFree, freePort } from '../harness/free-ports';
import { waitFor } from './support/env';
import { workflowBundlePath } from './support/temporal';

const ROOT = resolve(__dirname, '..');
/** What `npm run build` compiles. */
const SOURCE_DIRS = (ts.readConfigFile(join(ROOT, 'tsconfig.build.json'), ts.sys.readFile).config as { include: string[] }).include;
const run = promisify(execFile);

/**
 * The sandbox as `npm run build` would make it, without touching dist/: every source file transpiled into
 * a folder under the project (so the sandbox finds its scripts and node_modules), plus this run's bundle.
 */
function buildSandbox(outDir: string): void {
  const { config } = ts.readConfigFile(join(ROOT, 'tsconfig.json'), ts.sys.readFile);
  const { options } = ts.convertCompilerOptionsFromJson(config.compilerOptions, ROOT);
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? walk(path) : path.endsWith('.ts') && !path.endsWith('.d.ts') ? [path] : [];
    });
  for (const file of SOURCE_DIRS.flatMap((dir) => walk(join(ROOT, dir)))) {
    const { outputText } = ts.transpileModule(readFileSync(file, 'utf8'), { compilerOptions: { ...options, sourceMap: false, isolatedModules: true }, fileName: file });
    const target = join(outDir, relative(ROOT, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, outputText);
  }
  copyFileSync(workflowBundlePath(), join(outDir, 'workflow-bundle.js'));
}

interface Ports {
  temporal: number;
  ui: number;
  release: number;
  github: number;
  argocd: number;
  endpoints: number;
  ecr: number;
}

async function freePorts(): Promise<Ports> {
  const taken = new Set<number>();
  const next = async (): Promise<number> => {
    for (;;) {
      const port = await freePort();
      if (!taken.has(port)) {
        taken.add(port);
        return port;
      }
    }
  };
  return { temporal: await next(), ui: await next(), release: await next(), github: await next(), argocd: await next(), endpoints: await next(), ecr: await next() };
}

function portFlags(ports: Ports): string[] {
  return Object.entries(ports).flatMap(([name, port]) => [`--${name}-port`, String(port)]);
}

/** The child's environment: nothing of ours that could steer the sandbox or the CLI elsewhere. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(SANDBOX_|TEMPORAL_|DEPLOY_|AWS_|GITHUB_)/.test(key)));
  return { ...env, ...extra };
}

class SandboxProcess {
  readonly output: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;

  constructor(outDir: string, args: string[]) {
    this.child = spawn(process.execPath, [join(outDir, 'sandbox', 'main.js'), ...args], { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (stream: string) => (chunk: Buffer) => this.output.push(...chunk.toString().split('\n').filter(Boolean).map((line) => (stream === 'err' ? `! ${line}` : line)));
    this.child.stdout!.on('data', keep('out'));
    this.child.stderr!.on('data', keep('err'));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  get text(): string {
    return this.output.join('\n');
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async waitForOutput(pattern: RegExp, timeoutMs: number): Promise<void> {
    try {
      await waitFor(() => pattern.test(this.text) || !this.running, { timeoutMs, intervalMs: 200, description: `sandbox output ${pattern}` });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- sandbox output ---\n${this.text}`);
    }
    if (!pattern.test(this.text)) throw new Error(`the sandbox exited before printing ${pattern}\n--- sandbox output ---\n${this.text}`);
  }

  /** What Ctrl-C in the terminal does. */
  async interrupt(timeoutMs = 60_000): Promise<number | null> {
    if (!this.running) return this.exited;
    this.child.kill('SIGINT');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function deployCli(outDir: string, args: string[], env: Record<string, string>, program = join('client', 'cli.js')): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [join(outDir, program), ...args], { cwd: ROOT, env: cleanEnv(env), timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const failed = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === 'number' ? failed.code : -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

interface ListedPipeline {
  workflowId: string;
  app?: string;
  status?: string;
  environment?: string;
}

describe('the local sandbox (npm start)', () => {
  let outDir: string;
  let dataDir: string;
  let ports: Ports;
  const started: SandboxProcess[] = [];

  const startSandbox = (args: string[] = []) => {
    const sandbox = new SandboxProcess(outDir, ['--data-dir', dataDir, ...portFlags(ports), ...args]);
    started.push(sandbox);
    return sandbox;
  };
  const temporalEnv = () => ({ TEMPORAL_ADDRESS: `127.0.0.1:${ports.temporal}` });
  /** What the sandbox wrote for the CLI; the CLI does not read the file itself yet, so the test hands it over. */
  const sandboxEnv = () => parseEnv(readFileSync(join(dataDir, 'deploy.env'), 'utf8')) as Record<string, string>;
  const list = async (): Promise<ListedPipeline[]> => {
    const result = await deployCli(outDir, ['list', '--json'], temporalEnv());
    if (result.code !== 0) throw new Error(`deploy list exited with ${result.code}: ${result.stderr}`);
    return JSON.parse(result.stdout) as ListedPipeline[];
  };
  const pageOfReleaseApp = async () => {
    const res = await fetch(`http://127.0.0.1:${ports.release}/`);
    expect(res.status).toBe(200);
    return (await res.text()).replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
  };

  beforeAll(async () => {
    mkdirSync(join(ROOT, '.cache', 'test'), { recursive: true });
    outDir = await mkdtemp(join(ROOT, '.cache', 'test', 'sandbox-build-'));
    buildSandbox(outDir);
    dataDir = await mkdtemp(join(tmpdir(), 'sandbox-data-'));
    ports = await freePorts();
  });

  afterEach(async () => {
    for (const sandbox of started) await sandbox.interrupt();
  });

  afterAll(async () => {
    for (const sandbox of started) await sandbox.interrupt();
    // Should a sandbox have died without stopping its children, end them: it left their pids behind.
    for (const file of readdirSync(dataDir).filter((name) => name.endsWith('.pid'))) {
      try {
        process.kill(Number(readFileSync(join(dataDir, file), 'utf8')), 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await rm(dataDir, { recursive: true, force: true });
    await rm(outDir, { recursive: true, force: true });
  });

  it('explains a taken port and starts nothing', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((done) => blocker.listen(ports.release, '127.0.0.1', done));
    try {
      const sandbox = startSandbox();
      expect(await sandbox.exited).toBe(2);
      expect(sandbox.text).toContain(`port ${ports.release} on 127.0.0.1, wanted for the release app simulator, is already in use`);
      expect(sandbox.text).toContain(`--release-port N or SANDBOX_RELEASE_PORT=N`);
      await ensurePortFree('127.0.0.1', ports.temporal, 'the Temporal port should still be free');
    } finally {
      await new Promise((done) => blocker.close(done));
    }
  });

  it('refuses bad settings with a message that names them', async () => {
    const sandbox = startSandbox(['--smoke-delay', '5s', '--ecr', 'docker']);
    expect(await sandbox.exited).toBe(2);
    expect(sandbox.text).toContain("--smoke-delay must stay under the smoke checks' 2000ms timeout");
    expect(sandbox.text).toContain('--ecr (SANDBOX_ECR) is auto, moto or simulator, not "docker"');
  });

  it('brings one app to production and leaves the other awaiting approval within a minute; Ctrl-C stops it all', async () => {
    const sandbox = startSandbox();
    await sandbox.waitForOutput(/ready in/, 120_000);
    // From "ready": how long the dev server takes to boot says more about the machine's load than the sandbox.
    const readyAt = Date.now();
    expect(sandbox.text).toContain(`Temporal Web UI    http://127.0.0.1:${ports.ui}`);
    expect(sandbox.text).toContain(`Release app page   http://127.0.0.1:${ports.release}/`);
    expect(sandbox.text).toMatch(/whitehall\s+continuous deployment to production/);
    expect(sandbox.text).toMatch(/content-publisher\s+needs approval for staging and production/);
    expect(sandbox.text).not.toMatch(/^! /m);

    const pipelines = await waitFor(
      async () => {
        const rows = await list();
        const whitehall = rows.find((row) => row.app === 'whitehall');
        const publisher = rows.find((row) => row.app === 'content-publisher');
        return whitehall?.status === 'SUCCEEDED' && publisher?.status === 'AWAITING_APPROVAL' ? rows : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1000, description: 'whitehall SUCCEEDED and content-publisher AWAITING_APPROVAL' },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n--- sandbox output ---\n${sandbox.text}`);
    });
    expect(Date.now() - readyAt).toBeLessThan(60_000);
    expect(pipelines).toHaveLength(2);
    expect(pipelines.find((row) => row.app === 'content-publisher')?.environment).toBe('staging');

    // The terminal tells the story as it happens, and how to approve.
    await sandbox.waitForOutput(/content-publisher \w{7}\s+staging\s+AWAITING_APPROVAL/, 10_000);
    await sandbox.waitForOutput(/whitehall \w{7}\s+production\s+DEPLOYED/, 10_000);
    expect(sandbox.text).toContain('approve with: npm run deploy -- approve deploy-content-publisher-');

    const page = await pageOfReleaseApp();
    const whitehallSha = pipelines.find((row) => row.app === 'whitehall')!.workflowId.slice(-40, -33);
    expect(page.match(new RegExp(`${whitehallSha} \\d{4}-`, 'g'))).toHaveLength(3);
    expect(page).toMatch(/Awaiting approval Application Commit Environment Pipeline Approve with Would ship content-publisher \w{7} staging deploy-content-publisher-/);
    // What the approval would ship: nothing has run on staging yet.
    expect(page).toMatch(/--environment staging Nothing recorded in staging yet: the first deploy there\./);

    const settings = sandboxEnv();
    expect(settings).toMatchObject({ TEMPORAL_ADDRESS: `127.0.0.1:${ports.temporal}`, TEMPORAL_NAMESPACE: 'default', DEPLOY_TASK_QUEUE: 'deployments' });
    expect(existsSync(settings.DEPLOY_CATALOGUE!)).toBe(true);

    // `npm run sandbox --` from another process finds the running sandbox through its data folder, and names what it has.
    expect(sandbox.text).toContain('npm run sandbox -- merge <app>');
    const play = (args: string[]) => deployCli(outDir, args, { SANDBOX_DATA_DIR: dataDir }, join('sandbox', 'play.js'));
    expect(await play(['break', 'content-publisher', 'qa'])).toMatchObject({
      code: 2,
      stderr: 'sandbox: app "content-publisher" has no environment "qa" (it has: integration, staging, production)\n',
    });

    const stopping = Date.now();
    expect(await sandbox.interrupt()).toBe(0);
    expect(Date.now() - stopping).toBeLessThan(30_000);
    expect(sandbox.text).toContain('Stopped. Everything is kept for the next start.');
    for (const [name, port] of Object.entries(ports)) await ensurePortFree('127.0.0.1', port, `${name} port ${port} is still taken after Ctrl-C`);
    // Each child removes its pid file when it exits.
    expect(readdirSync(dataDir).filter((name) => name.endsWith('.pid'))).toEqual([]);
    expect(await play(['merge', 'whitehall'])).toMatchObject({ code: 5, stderr: expect.stringContaining(`no sandbox is running on ${dataDir}`) });
  }, 240_000);

  it('resumes on a second start: the waiting pipeline can be approved and goes on', async () => {
    // A fresh ECR process, empty: images come back from the sandbox's own state, the same manifests, so the same
    // digests the waiting pipeline checked (its bump refuses an image whose digest changed). The same ECR as the
    // first start: moto derives a digest from the layers, real ECR (and the sandbox's simulator) from the manifest.
    const sandbox = startSandbox([]);
    await sandbox.waitForOutput(/ready in/, 120_000);
    expect(sandbox.text).toMatch(/✓ ECR +(moto's server|ECR simulator) at/);
    expect(sandbox.text.match(/\(started by an earlier run\)/g)).toHaveLength(2);
    const before = await list();
    expect(before.map((row) => [row.app, row.status]).sort()).toEqual([
      ['content-publisher', 'AWAITING_APPROVAL'],
      ['whitehall', 'SUCCEEDED'],
    ]);
    const waiting = before.find((row) => row.app === 'content-publisher')!.workflowId;

    const env = sandboxEnv();
    const approved = await deployCli(outDir, ['approve', waiting, '--environment', 'staging', '--approver', 'tester'], env);
    expect(approved).toMatchObject({ code: 0, stdout: expect.stringContaining(`approved staging for ${waiting} as tester`) });
    await waitFor(
      async () => {
        const result = await deployCli(outDir, ['status', waiting, '--json'], env);
        const status = JSON.parse(result.stdout) as { environments: Array<{ environment: string; state: string }> };
        const states = Object.fromEntries(status.environments.map((e) => [e.environment, e.state]));
        return states.staging === 'DEPLOYED' && states.production === 'AWAITING_APPROVAL';
      },
      { timeoutMs: 90_000, intervalMs: 1000, description: 'staging DEPLOYED and production AWAITING_APPROVAL' },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n--- sandbox output ---\n${sandbox.text}`);
    });
    expect((await list()).map((row) => row.workflowId).sort()).toEqual(before.map((row) => row.workflowId).sort());

    // The release app kept the first run's records and added the new one.
    const page = await pageOfReleaseApp();
    const publisherSha = waiting.slice(-40, -33);
    expect(page.match(new RegExp(`${publisherSha} \\d{4}-`, 'g'))).toHaveLength(2);
    expect(page).toMatch(new RegExp(`content-publisher ${publisherSha} production deploy-content-publisher-`));

    // CI's retry of the finished whitehall pipeline, by branch name: the CLI with the sandbox's settings.
    const followed = await deployCli(outDir, ['start', '--app', 'whitehall', '--ref', 'main', '--wait'], env);
    expect(followed.code).toBe(0);
    expect(followed.stdout).toMatch(/production\s+DEPLOYED/);

    // Production takes only verified decisions: a name alone is refused, and the sandbox's own settings sign.
    const claimed = await deployCli(outDir, ['approve', waiting, '--environment', 'production', '--approver', 'tester'], env);
    expect(claimed).toMatchObject({ code: 3, stderr: expect.stringContaining('production takes only verified decisions') });
    const verified = await deployCli(outDir, ['approve', waiting, '--environment', 'production'], env);
    expect(verified).toMatchObject({ code: 0, stdout: expect.stringContaining(`approved production for ${waiting} as sandbox-approver (verified: ssh-signature)`) });

    expect(await sandbox.interrupt()).toBe(0);
    expect(sandbox.text).toContain('Stopped. Everything is kept for the next start.');
  }, 240_000);
});
