#!/usr/bin/env node
// Finds (or builds) the Temporal server that docker-compose.yml runs, from source: `temporal-server`, its SQL tool
// `temporal-sql-tool`, and the PostgreSQL schema folder the SQL tool applies (scripts/temporal-schema.sh). The version
// is the one docker-compose.yml names (`temporalio/server:${TEMPORAL_VERSION:-X}`), so the two cannot drift.
//
// Prints one JSON line on stdout: {"version","server","sqlTool","schemaDir"} (absolute paths); logs go to stderr.
// .ci/run runs it before the tests, and harness/temporal-server.ts runs it for the TypeScript code.
//
// Order: the copies this script built earlier under .cache/ (when they report the pinned version), else
// `go install go.temporal.io/server/cmd/server@vX` and `…/cmd/tools/sql@vX` (the release carries no `replace`
// directive) into .cache/bin, with the schema copied out of Go's module cache. Never a fake fallback.
//
// Usage: node scripts/ensure-temporal-server.mjs

import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { isExecutableFile } from './executables.mjs';
import { fileURLToPath } from 'node:url';

const SERVER_MODULE = 'go.temporal.io/server';
const PACKAGES = { 'temporal-server': 'cmd/server', 'temporal-sql-tool': 'cmd/tools/sql' };

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const binDir = path.join(repoRoot, '.cache', 'bin');

function log(msg) {
  process.stderr.write(`[temporal-server] ${msg}\n`);
}

function fail(msg) {
  process.stderr.write(`[temporal-server] ERROR: ${msg}\n`);
  process.exit(1);
}

/** The version in docker-compose.yml's `temporalio/server:${TEMPORAL_VERSION:-X}`. */
function composeVersion() {
  const compose = readFileSync(path.join(repoRoot, 'docker-compose.yml'), 'utf8');
  const match = /image:\s*temporalio\/server:\$\{TEMPORAL_VERSION:-(\d+\.\d+\.\d+)\}/.exec(compose);
  if (!match) fail('docker-compose.yml names no temporalio/server:${TEMPORAL_VERSION:-X.Y.Z} image');
  return match[1];
}

/** True when `<p> --version` ends with the version (e.g. "temporal version 1.31.2"). */
function reportsVersion(p, version) {
  if (!isExecutableFile(p)) return false;
  const r = spawnSync(p, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  return r.status === 0 && (r.stdout || '').trim().endsWith(` ${version}`);
}

function findOnPath(name) {
  for (const dir of (process.env.PATH || '').split(path.delimiter).filter(Boolean)) {
    const candidate = path.resolve(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

/** Runs go with `args`, streaming its output to stderr; resolves with the exit code, the output's tail and stdout. */
function runGo(goPath, args, env) {
  return new Promise((resolve) => {
    const tail = [];
    let stdout = '';
    const keep = (chunk) => {
      process.stderr.write(chunk);
      tail.push(chunk.toString());
      while (tail.length > 200) tail.shift();
    };
    // Outside any Go module: only the named module@version counts.
    const child = spawn(goPath, args, { cwd: path.join(repoRoot, '.cache'), env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (chunk) => (stdout += chunk.toString()));
    child.stderr.on('data', keep);
    child.on('error', (err) => resolve({ code: -1, output: `cannot run ${goPath}: ${err.message}`, stdout }));
    child.on('close', (code, signal) => resolve({ code: code ?? `signal ${signal}`, output: tail.join('').trim().split('\n').slice(-40).join('\n'), stdout }));
  });
}

async function build(goPath, version) {
  const staging = path.join(repoRoot, '.cache', `temporal-server-build-${process.pid}`);
  mkdirSync(staging, { recursive: true });
  try {
    const targets = Object.values(PACKAGES).map((pkg) => `${SERVER_MODULE}/${pkg}@v${version}`);
    log(`building the Temporal server ${version} and its SQL tool: go install ${targets.join(' ')}`);
    log("(a cold build takes several minutes; later builds reuse Go's module and build caches)");
    const { code, output } = await runGo(goPath, ['install', ...targets], { GOBIN: staging });
    if (code !== 0) fail(`\`go install ${targets.join(' ')}\` exited with ${code}.\n--- last lines of the build output ---\n${output}`);
    mkdirSync(binDir, { recursive: true });
    for (const [name, pkg] of Object.entries(PACKAGES)) {
      const built = path.join(staging, path.basename(pkg));
      if (!isExecutableFile(built)) fail(`go install succeeded but ${built} is missing`);
      renameSync(built, path.join(binDir, name));
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** The PostgreSQL schema of that server version, copied once out of Go's module cache. */
async function ensureSchema(goPath, version) {
  const schemaDir = path.join(repoRoot, '.cache', 'temporal-schema', version, 'postgresql', 'v12');
  if (existsSync(path.join(schemaDir, 'temporal', 'versioned')) && existsSync(path.join(schemaDir, 'visibility', 'versioned'))) return schemaDir;
  if (!goPath) fail(`the schema of Temporal ${version} is not under .cache/temporal-schema and Go is not installed to fetch it`);
  const { code, output, stdout } = await runGo(goPath, ['mod', 'download', '-json', `${SERVER_MODULE}@v${version}`], {});
  if (code !== 0) fail(`\`go mod download ${SERVER_MODULE}@v${version}\` exited with ${code}:\n${output}\n${stdout}`);
  const moduleDir = JSON.parse(stdout).Dir;
  const source = path.join(moduleDir, 'schema', 'postgresql', 'v12');
  if (!existsSync(source)) fail(`${SERVER_MODULE}@v${version} has no schema/postgresql/v12 folder`);
  rmSync(schemaDir, { recursive: true, force: true });
  mkdirSync(path.dirname(schemaDir), { recursive: true });
  cpSync(source, schemaDir, { recursive: true });
  return schemaDir;
}

async function main() {
  const version = composeVersion();
  const paths = Object.fromEntries(Object.keys(PACKAGES).map((name) => [name, path.join(binDir, name)]));
  const goPath = findOnPath(process.platform === 'win32' ? 'go.exe' : 'go');
  if (Object.values(paths).every((p) => reportsVersion(p, version))) {
    log(`using the project-built temporal-server and temporal-sql-tool ${version} in .cache/bin`);
  } else {
    if (!goPath) {
      fail(
        `no temporal-server ${version} under .cache/bin and Go is not installed, so it cannot be built.\n` +
          `  Install Go so that this script can run \`go install ${SERVER_MODULE}/cmd/server@v${version}\`.`,
      );
    }
    await build(goPath, version);
    for (const [name, p] of Object.entries(paths)) {
      if (!reportsVersion(p, version)) fail(`${name} was built but \`${p} --version\` does not report ${version}`);
    }
  }
  const schemaDir = await ensureSchema(goPath, version);
  process.stdout.write(`${JSON.stringify({ version, server: paths['temporal-server'], sqlTool: paths['temporal-sql-tool'], schemaDir })}\n`);
}

main().catch((err) => fail(err && err.stack ? err.stack : String(err)));
