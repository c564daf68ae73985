/**
 * The child processes of the sandbox, the bench and the tests (Temporal servers, moto, workers): their output in
 * a log file or kept in memory line by line, stopped gently or killed on request, and never left running after
 * the process that started them has exited, whatever ended it.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

export interface ChildOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** stdout and stderr go to this file; without one, they are kept in memory (`lines`). */
  logFile?: string;
  /** Empty the log file first; by default a restart appends to it. */
  freshLog?: boolean;
  /** Holds the pid while the child runs, so that a later start can name what an earlier one, killed outright, left running. */
  pidFile?: string;
  /**
   * A process group of its own: Ctrl-C in a terminal then reaches only us, who stop the child in order, and
   * `stop()` and `kill()` reach whatever it started in turn.
   */
  ownProcessGroup?: boolean;
  /** An IPC channel (`child.process.on('message')`). */
  ipc?: boolean;
  /** stdin as a pipe to write to; ignored by default. */
  stdin?: boolean;
  /** What `stop()` sends first; SIGTERM by default. */
  stopSignal?: NodeJS.Signals;
  /** How many lines of output to keep in memory without a log file; 5000 by default. */
  keepLines?: number;
  /** Run as this user and group (only root may): for servers that refuse to run as root, e.g. PostgreSQL. */
  uid?: number;
  gid?: number;
}

export interface Child {
  readonly name: string;
  /** -1 when it could not be started. */
  readonly pid: number;
  readonly process: ChildProcess;
  readonly logFile: string | undefined;
  /** Its output, one entry a line, when it has no log file. */
  readonly lines: string[];
  /** Why it ended, once it has. */
  readonly exited: string | undefined;
  readonly running: boolean;
  /** Resolves once it has ended. */
  readonly ended: Promise<void>;
  /** `stopSignal`, then SIGKILL after `graceMs`; resolves once it has ended. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL, as `kill -9`: no shutdown of any kind. Resolves once it has ended and its output is read. */
  kill(): Promise<void>;
  /** The end of its output, for error messages. */
  outputTail(lines?: number): string;
}

interface Live {
  signal(signal: NodeJS.Signals): void;
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<Live>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) child.signal('SIGKILL');
  });
}

function collectLines(child: ChildProcess, lines: string[], max: number): void {
  for (const stream of [child.stdout, child.stderr]) {
    let partial = '';
    stream?.on('data', (chunk: Buffer) => {
      const parts = (partial + chunk.toString('utf8')).split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts.filter((line) => line.trim() !== ''));
      if (lines.length > max) lines.splice(0, lines.length - max);
    });
  }
}

export function startChild(name: string, command: string, args: string[], options: ChildOptions = {}): Child {
  installExitHook();
  const log = options.logFile === undefined ? undefined : openSync(options.logFile, options.freshLog ? 'w' : 'a');
  const output: StdioOptions = log === undefined ? ['pipe', 'pipe'] : [log, log];
  let child: ChildProcess;
  try {
    child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      detached: options.ownProcessGroup ?? false,
      uid: options.uid,
      gid: options.gid,
      stdio: [options.stdin ? 'pipe' : 'ignore', ...output, ...(options.ipc ? ['ipc' as const] : [])],
    });
  } finally {
    if (log !== undefined) closeSync(log);
  }
  const lines: string[] = [];
  if (log === undefined) collectLines(child, lines, options.keepLines ?? 5000);
  const isRunning = () => child.pid !== undefined && child.exitCode === null && child.signalCode === null;
  const signal = (sig: NodeJS.Signals) => {
    if (!isRunning()) return;
    try {
      if (options.ownProcessGroup) process.kill(-child.pid!, sig);
      else child.kill(sig);
    } catch {
      // Gone in between.
    }
  };
  if (options.pidFile && child.pid !== undefined) writeFileSync(options.pidFile, `${child.pid}\n`);
  let exited: string | undefined;
  let spawnFailed = false;
  const ended = new Promise<void>((resolve) => {
    const end = (why: string) => {
      exited ??= why;
      live.delete(entry);
      if (options.pidFile) rmSync(options.pidFile, { force: true });
      resolve();
    };
    child.once('error', (err) => {
      spawnFailed = child.pid === undefined;
      end(`could not be started: ${err.message}`);
    });
    child.once('exit', (code, sig) => end(sig ? `was killed by ${sig}` : `exited with code ${code}`));
  });
  const outputRead = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const untilEndedAndRead = async () => {
    await ended;
    if (spawnFailed) return;
    // A grandchild may hold the pipes open: what is not read within a second is not waited for.
    await Promise.race([outputRead, new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
  };
  const handle: Child = {
    name,
    get pid() {
      return child.pid ?? -1;
    },
    process: child,
    logFile: options.logFile,
    lines,
    get exited() {
      return exited;
    },
    get running() {
      return exited === undefined && isRunning();
    },
    ended,
    async stop(graceMs = 10_000) {
      signal(options.stopSignal ?? 'SIGTERM');
      const timer = setTimeout(() => signal('SIGKILL'), graceMs);
      await untilEndedAndRead();
      clearTimeout(timer);
    },
    async kill() {
      signal('SIGKILL');
      await untilEndedAndRead();
    },
    outputTail(count = 20) {
      if (options.logFile === undefined) return lines.slice(-count).join('\n');
      try {
        return readFileSync(options.logFile, 'utf8').trimEnd().split('\n').slice(-count).join('\n');
      } catch {
        return '';
      }
    },
  };
  const entry: Live = { signal, stop: (graceMs) => handle.stop(graceMs) };
  live.add(entry);
  return handle;
}

/** Stops every child still running (`stop()`, all at once): for a process that ends with all it started. */
export async function stopAllChildren(graceMs = 10_000): Promise<void> {
  await Promise.all([...live].map((child) => child.stop(graceMs)));
}

/**
 * Polls `ready` until it answers true. Fails early when the child ends, and at `timeoutMs` after stopping it;
 * either way quoting the end of its output.
 */
export async function waitUntilReady(child: Child, ready: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const started = Date.now();
  let lastError = '';
  for (;;) {
    if (child.exited !== undefined) {
      throw new Error(`${child.name} ${child.exited} during start-up; the end of ${child.logFile ?? 'its output'}:\n${child.outputTail()}`);
    }
    try {
      if (await ready()) return;
    } catch (err) {
      lastError = (err as Error).message;
    }
    if (Date.now() - started > timeoutMs) {
      await child.stop(2000);
      throw new Error(
        `${child.name} did not become ready within ${Math.round(timeoutMs / 1000)}s${lastError ? ` (last error: ${lastError})` : ''}; the end of ${child.logFile ?? 'its output'}:\n${child.outputTail()}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
