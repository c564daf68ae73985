import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildOptions } from '../harness/child-processes';

/** How the sandbox runs its children, one sandbox per data folder, and what an earlier one, killed outright, left running. */

/**
 * In a process group of their own, so that Ctrl-C in the terminal reaches only the sandbox, which then stops them
 * in order, as Ctrl-C would have.
 */
export const SANDBOX_CHILD: Pick<ChildOptions, 'ownProcessGroup' | 'stopSignal'> = { ownProcessGroup: true, stopSignal: 'SIGINT' };
export const SANDBOX_CHILD_GRACE_MS = 15_000;

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
 * Children of an earlier sandbox on this data folder that are still alive (it was killed, not stopped): the pid
 * files the harness keeps while they run name them. Only processes whose command line still names that program count.
 */
export function leftoverProcesses(children: Array<{ name: string; pidFile: string; program: string }>): Array<{ name: string; pid: number }> {
  const alive: Array<{ name: string; pid: number }> = [];
  for (const { name, pidFile, program } of children) {
    let pid: number;
    try {
      pid = Number(readFileSync(pidFile, 'utf8').trim());
    } catch {
      continue;
    }
    if (isRunning(pid, program)) alive.push({ name, pid });
  }
  return alive;
}
