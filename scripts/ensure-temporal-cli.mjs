#!/usr/bin/env node
// Finds (or builds) a usable `temporal` CLI for the dev server used by the tests, the bench and the
// sandbox (see DESIGN.md §6). Prints the executable's absolute path on stdout; all logging goes to stderr.
// The one lookup: .ci/run and `npm run temporal-cli` run it before anything is compiled, and
// harness/temporal-cli.ts runs it for the TypeScript code.
//
// Order:
//   1. $TEMPORAL_CLI_PATH (must work if set; no silent fallback)
//   2. `temporal` on PATH
//   3. the project-built copy at .cache/bin/temporal
//   4. `go install github.com/temporalio/cli/cmd/temporal@v1.5.1` into .cache/bin when Go is present
//      (later CLI versions carry a `replace` directive and cannot be `go install`ed)
// There is never a fake fallback: if nothing works, exit non-zero with the reason.
//
// Usage: node scripts/ensure-temporal-cli.mjs

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { isExecutableFile } from './executables.mjs';
import { fileURLToPath } from 'node:url';

const CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';
const CLI_VERSION = 'v1.5.1';
const EXE = process.platform === 'win32' ? 'temporal.exe' : 'temporal';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const binDir = path.join(repoRoot, '.cache', 'bin');
const builtCopy = path.join(binDir, EXE);

function log(msg) {
  process.stderr.write(`[temporal-cli] ${msg}\n`);
}

function fail(msg) {
  process.stderr.write(`[temporal-cli] ERROR: ${msg}\n`);
  process.exit(1);
}

/** Runs `<p> --version`; returns the version line, or throws with the reason. */
function probe(p) {
  const r = spawnSync(p, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw new Error(`cannot run ${p}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(`${p} --version exited with ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim()}`);
  }
  return (r.stdout || '').trim().split('\n')[0];
}

function findOnPath(name) {
  const dirs = (process.env.PATH || '').split(path.delimiter).filter(Boolean);
  for (const dir of dirs) {
    const candidate = path.resolve(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

function found(p, source) {
  const version = probe(p);
  log(`using ${p} (${source}; ${version})`);
  process.stdout.write(`${p}\n`);
  process.exit(0);
}

function tryCandidate(p, source) {
  try {
    found(p, source);
  } catch (err) {
    log(`skipping ${source} ${p}: ${err.message}`);
  }
}

/** Runs `go install`, streaming its output to stderr; resolves with the exit code and the output's tail. */
function goInstall(goPath) {
  return new Promise((resolve) => {
    mkdirSync(binDir, { recursive: true });
    const args = ['install', `${CLI_MODULE}@${CLI_VERSION}`];
    log(`building the temporal CLI ${CLI_VERSION}: GOBIN=${binDir} ${goPath} ${args.join(' ')}`);
    log('(a cold build takes a few minutes; later builds reuse Go\'s module and build caches)');
    const tail = [];
    const keep = (chunk) => {
      process.stderr.write(chunk);
      tail.push(chunk.toString());
      while (tail.length > 200) tail.shift();
    };
    const child = spawn(goPath, args, {
      cwd: repoRoot,
      env: { ...process.env, GOBIN: binDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (err) => resolve({ code: -1, output: `cannot run ${goPath}: ${err.message}` }));
    child.on('close', (code, signal) => {
      const output = tail.join('').trim().split('\n').slice(-40).join('\n');
      resolve({ code: code ?? `signal ${signal}`, output });
    });
  });
}

async function main() {
  // 1. Explicit override: if it is set, it must work.
  const override = process.env.TEMPORAL_CLI_PATH;
  if (override) {
    const p = path.resolve(override);
    if (!isExecutableFile(p)) fail(`TEMPORAL_CLI_PATH=${override} is not an executable file`);
    try {
      found(p, 'TEMPORAL_CLI_PATH');
    } catch (err) {
      fail(`TEMPORAL_CLI_PATH=${override} does not work: ${err.message}`);
    }
  }

  // 2. On PATH.
  const onPath = findOnPath(EXE);
  if (onPath) tryCandidate(onPath, 'PATH');

  // 3. Built earlier by this script.
  if (isExecutableFile(builtCopy)) tryCandidate(builtCopy, 'project-built copy');

  // 4. Build it with Go.
  const goPath = findOnPath(process.platform === 'win32' ? 'go.exe' : 'go');
  if (!goPath) {
    fail(
      'no temporal CLI found and Go is not installed, so it cannot be built.\n' +
        '  Either set TEMPORAL_CLI_PATH to a `temporal` executable (https://github.com/temporalio/cli),\n' +
        '  put `temporal` on PATH, or install Go so that this script can run\n' +
        `  \`go install ${CLI_MODULE}@${CLI_VERSION}\` into .cache/bin.\n` +
        '  (The SDK can also download the CLI itself, but only on machines with general internet access.)',
    );
  }
  const { code, output } = await goInstall(goPath);
  if (code !== 0) {
    fail(
      `temporal CLI could not be built: \`go install ${CLI_MODULE}@${CLI_VERSION}\` exited with ${code}.\n` +
        `--- last lines of the build output ---\n${output}`,
    );
  }
  if (!isExecutableFile(builtCopy)) {
    fail(`temporal CLI could not be built: go install succeeded but ${builtCopy} is missing`);
  }
  try {
    found(builtCopy, 'freshly built');
  } catch (err) {
    fail(`temporal CLI was built but does not run: ${err.message}`);
  }
}

main().catch((err) => fail(err && err.stack ? err.stack : String(err)));
