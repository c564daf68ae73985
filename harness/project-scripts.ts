/**
 * The project's own folder and the helper scripts in scripts/ that find or install what the harness runs
 * (the `temporal` CLI, moto's server): each prints the path of an executable on stdout and logs to stderr.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The project's root folder, from the source tree, from dist/ or from any compiled copy inside the project. */
export function projectRoot(from = __dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'scripts', 'ensure-temporal-cli.mjs'))) return dir;
    if (dirname(dir) === dir) throw new Error(`cannot find the project's root folder above ${from}`);
  }
}

export interface PathScriptOptions {
  /** What is missing when the script fails, for the error message (e.g. "no temporal CLI"). */
  what: string;
  /** `show`: the script's log goes to our stderr as it runs (a Go build's progress); `on-failure`: only into the error. */
  log: 'show' | 'on-failure';
  /** Called once should the script still run after a few seconds: it is building or installing. */
  onSlow?: () => void;
}

const SLOW_MS = 5000;

/** Runs `command args` in the project's folder and resolves with the last line it printed on stdout. */
export function runPathScript(command: string, args: string[], options: PathScriptOptions): Promise<string> {
  const root = projectRoot();
  const shown = `${command === process.execPath ? 'node' : command} ${args.map((arg) => arg.replace(`${root}/`, '')).join(' ')}`;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: root, stdio: ['ignore', 'pipe', options.log === 'show' ? 'inherit' : 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const slow = setTimeout(() => options.onSlow?.(), SLOW_MS);
    child.once('error', (err) => {
      clearTimeout(slow);
      reject(new Error(`${options.what}: cannot run \`${shown}\`: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(slow);
      const path = stdout.trim().split('\n').pop()?.trim();
      if (code === 0 && path) return resolve(path);
      const why = code === 0 ? 'printed no path' : `exited with ${code ?? signal}`;
      const log = options.log === 'show' ? ' (its output is above)' : `:\n${stderr.trim()}`;
      reject(new Error(`${options.what}: \`${shown}\` ${why}${log}`));
    });
  });
}
