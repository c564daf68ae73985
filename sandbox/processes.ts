import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';

/** Child processes of the sandbox (the Temporal dev server, moto) and the checks around them. */

/** The project's root folder, from the source tree or from dist/. */
export function projectRoot(from = __dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'scripts', 'ensure-temporal-cli.mjs'))) return dir;
    if (dirname(dir) === dir) throw new Error(`cannot find the project's root folder above ${from}`);
  }
}

export class PortTakenError extends Error {
  constructor(
    readonly port: number,
    message: string,
  ) {
    super(message);
    this.name = 'PortTakenError';
  }
}

/** Resolves when nothing listens on host:port; rejects with PortTakenError otherwise. */
export function ensurePortFree(host: string, port: number, message: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE' || err.code === 'EACCES' ? new PortTakenError(port, message) : err);
    });
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve()));
  });
}

export interface BackgroundProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Why it stopped, once it has. */
  readonly exited?: string;
  /** Interrupts it as Ctrl-C would, then kills it after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  /** The end of its log, for error messages. */
  logTail(lines?: number): string;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Whatever happens to the sandbox, even an uncaught error, its children must not outlive it. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of running) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
}

/**
 * Starts a long-running command with its output appended to a log file. It runs in a process group of its
 * own, so that Ctrl-C in the terminal reaches only the sandbox, which then stops its children in order.
 */
export function startBackground(name: string, command: string, args: string[], logFile: string): BackgroundProcess {
  installExitHook();
  const log = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, args, { detached: true, stdio: ['ignore', log, log] });
  } finally {
    closeSync(log);
  }
  running.add(child);
  // Should the sandbox be killed outright, the next start can name what still holds its ports.
  const pidFile = pidFileOf(logFile);
  if (child.pid !== undefined) writeFileSync(pidFile, `${child.pid}\n`);
  const forget = () => rmSync(pidFile, { force: true });
  let exited: string | undefined;
  let spawnError: Error | undefined;
  const done = new Promise<void>((resolve) => {
    child.once('error', (err) => {
      spawnError = err;
      exited = `could not be started: ${err.message}`;
      running.delete(child);
      resolve();
    });
    child.once('exit', (code, signal) => {
      exited = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      running.delete(child);
      forget();
      resolve();
    });
  });
  return {
    name,
    get pid() {
      return child.pid ?? -1;
    },
    logFile,
    get exited() {
      return exited;
    },
    async stop(graceMs = 15_000) {
      if (exited !== undefined || spawnError) return;
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await done;
      clearTimeout(timer);
    },
    logTail(lines = 20) {
      try {
        return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
      } catch {
        return '';
      }
    },
  };
}

function pidFileOf(logFile: string): string {
  return logFile.replace(/\.log$/, '') + '.pid';
}

export class DataDirBusyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataDirBusyError';
  }
}

/** Whether `pid` is a live process whose command line names `program` (without /proc, whether it is alive). */
function isRunning(pid: number, program: string): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(program);
  } catch {
    return true;
  }
}

/**
 * One sandbox per data folder: two Temporal servers on one SQLite file would corrupt it. Returns the
 * release, which removes the claim.
 */
export function claimDataDir(dataDir: string): () => void {
  const file = join(dataDir, 'sandbox.pid');
  let holder: number | undefined;
  try {
    holder = Number(readFileSync(file, 'utf8').trim());
  } catch {
    holder = undefined;
  }
  if (holder !== undefined && holder !== process.pid && isRunning(holder, 'node')) {
    throw new DataDirBusyError(`another sandbox (pid ${holder}) runs on ${dataDir}; stop it first (Ctrl-C in its terminal, or kill -INT ${holder})`);
  }
  writeFileSync(file, `${process.pid}\n`);
  return () => {
    try {
      if (Number(readFileSync(file, 'utf8').trim()) === process.pid) rmSync(file, { force: true });
    } catch {
      // Already gone.
    }
  };
}

/**
 * Children of an earlier sandbox on this data folder that are still alive (it was killed, not stopped),
 * Only processes whose command line still names that program count.
 */
export function leftoverProcesses(logFiles: Array<{ name: string; logFile: string; program: string }>): Array<{ name: string; pid: number }> {
  const alive: Array<{ name: string; pid: number }> = [];
  for (const { name, logFile, program } of logFiles) {
    let pid: number;
    try {
      pid = Number(readFileSync(pidFileOf(logFile), 'utf8').trim());
    } catch {
      continue;
    }
    if (isRunning(pid, program)) alive.push({ name, pid });
  }
  return alive;
}

/** Polls `ready` until it answers true; fails early when the process dies, quoting its log. */
export async function waitUntilReady(child: BackgroundProcess, ready: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const started = Date.now();
  let lastError = '';
  for (;;) {
    if (child.exited !== undefined) {
      throw new Error(`${child.name} ${child.exited} during start-up; the end of ${child.logFile}:\n${child.logTail()}`);
    }
    try {
      if (await ready()) return;
    } catch (err) {
      lastError = (err as Error).message;
    }
    if (Date.now() - started > timeoutMs) {
      await child.stop(2000);
      throw new Error(
        `${child.name} did not become ready within ${Math.round(timeoutMs / 1000)}s${lastError ? ` (last error: ${lastError})` : ''}; the end of ${child.logFile}:\n${child.logTail()}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
