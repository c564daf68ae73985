/**
 * The Temporal server of docker-compose.yml without containers: `temporal-server` and `temporal-sql-tool` built from
 * source at the version the compose file names (scripts/ensure-temporal-server.mjs), on PostgreSQL
 * (harness/postgresql.ts), with the schema set up by the compose file's temporal-schema job script and the
 * namespace and search attributes registered by its temporal-admin-tools job script. The server reads its
 * configuration from the environment through the template built into it, as the temporalio/server image does, so
 * it takes the same variables as the compose file's `temporal` service.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../workflows/definitions';
import { startChild, waitUntilReady, type Child } from './child-processes';
import { freePort } from './free-ports';
import type { PostgreSQL } from './postgresql';
import { projectRoot, runPathScript } from './project-scripts';

export interface TemporalServerBuild {
  version: string;
  server: string;
  sqlTool: string;
  /** The schema folder the SQL tool applies (TEMPORAL_SCHEMA_DIR of scripts/temporal-schema.sh). */
  schemaDir: string;
}

/** The server, its SQL tool and schema, built with Go once and cached under .cache/. */
export async function findTemporalServer(options: { log?: 'show' | 'on-failure' } = {}): Promise<TemporalServerBuild> {
  const line = await runPathScript(process.execPath, [path.join(projectRoot(), 'scripts', 'ensure-temporal-server.mjs')], {
    what: 'no temporal-server',
    log: options.log ?? 'on-failure',
  });
  return JSON.parse(line) as TemporalServerBuild;
}

/** Runs a shell script of scripts/ with exactly `env`; resolves with its output, rejects with it when it fails. */
export function runProjectScript(script: string, env: Record<string, string>, timeoutMs = 180_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', [path.join(projectRoot(), 'scripts', script)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => reject(err));
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(output);
      else reject(new Error(`scripts/${script} exited with ${code ?? signal}:\n${output.trim()}`));
    });
  });
}

/** docker-compose.yml's temporal-schema job: creates or upgrades both databases. */
export function setUpSchema(build: TemporalServerBuild, db: PostgreSQL): Promise<string> {
  return runProjectScript('temporal-schema.sh', {
    PATH: process.env.PATH ?? '',
    SQL_HOST: db.host,
    SQL_PORT: String(db.port),
    SQL_USER: db.user,
    SQL_PASSWORD: db.password,
    TEMPORAL_SQL_TOOL: build.sqlTool,
    TEMPORAL_SCHEMA_DIR: build.schemaDir,
  });
}

/** docker-compose.yml's temporal-admin-tools job: the namespace and the pipeline's search attributes. */
export function registerSearchAttributes(options: { cliPath: string; address: string; namespace: string; retention?: string; extraEnv?: Record<string, string> }): Promise<string> {
  return runProjectScript('register-search-attributes.sh', {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? projectRoot(),
    TEMPORAL_CLI: options.cliPath,
    TEMPORAL_ADDRESS: options.address,
    TEMPORAL_NAMESPACE: options.namespace,
    TEMPORAL_NAMESPACE_RETENTION: options.retention ?? '720h',
    DEPLOY_SEARCH_ATTRIBUTES: SEARCH_ATTRIBUTES.map((key) => key.name).join(' '),
    ...options.extraEnv,
  });
}

/** The ports of the server's four services (the template's *_PORT variables); the same across restarts. */
export type TemporalServerPorts = Record<(typeof PORT_VARIABLES)[number], number>;

const PORT_VARIABLES = [
  'FRONTEND_GRPC_PORT',
  'FRONTEND_MEMBERSHIP_PORT',
  'FRONTEND_HTTP_PORT',
  'INTERNAL_FRONTEND_GRPC_PORT',
  'INTERNAL_FRONTEND_MEMBERSHIP_PORT',
  'INTERNAL_FRONTEND_HTTP_PORT',
  'MATCHING_GRPC_PORT',
  'MATCHING_MEMBERSHIP_PORT',
  'HISTORY_GRPC_PORT',
  'HISTORY_MEMBERSHIP_PORT',
  'WORKER_GRPC_PORT',
  'WORKER_MEMBERSHIP_PORT',
] as const;

export async function freeServerPorts(): Promise<TemporalServerPorts> {
  const ports: Partial<TemporalServerPorts> = {};
  const taken = new Set<number>();
  for (const name of PORT_VARIABLES) {
    let port: number;
    do port = await freePort();
    while (taken.has(port));
    taken.add(port);
    ports[name] = port;
  }
  return ports as TemporalServerPorts;
}

export interface JwtAuthorization {
  /** Where the server fetches the keys that sign callers' tokens (TEMPORAL_JWT_KEY_SOURCE1). */
  jwksUrl: string;
  /** The claim holding `namespace:role` permissions; the template's default is `permissions`. */
  permissionsClaim?: string;
}

export interface TemporalServerOptions {
  build: TemporalServerBuild;
  db: PostgreSQL;
  /** Holds the log and the dynamic configuration file. */
  dir: string;
  ports: TemporalServerPorts;
  /** Dynamic configuration: key → value (any JSON value), written to the file the server polls. */
  dynamicConfig?: Record<string, unknown>;
  /** The default JWT authorizer and claim mapper; internal callers then use an internal frontend of their own. */
  authorization?: JwtAuthorization;
  readyTimeoutMs?: number;
}

/**
 * The environment of the compose file's `temporal` service, for a server on loopback: DB, DB_PORT, POSTGRES_SEEDS,
 * POSTGRES_USER, POSTGRES_PWD and BIND_ON_IP, plus the ports and the files that one server among others needs.
 */
export function temporalServerEnvironment(options: Omit<TemporalServerOptions, 'readyTimeoutMs' | 'build'>, dynamicConfigFile: string): Record<string, string> {
  const { db, authorization } = options;
  return {
    PATH: process.env.PATH ?? '',
    DB: 'postgres12',
    DB_PORT: String(db.port),
    POSTGRES_SEEDS: db.host,
    POSTGRES_USER: db.user,
    POSTGRES_PWD: db.password,
    BIND_ON_IP: '127.0.0.1',
    LOG_LEVEL: 'warn',
    DYNAMIC_CONFIG_FILE_PATH: dynamicConfigFile,
    ...Object.fromEntries(Object.entries(options.ports).map(([name, port]) => [name, String(port)])),
    ...(authorization
      ? {
          TEMPORAL_AUTH_AUTHORIZER: 'default',
          TEMPORAL_AUTH_CLAIM_MAPPER: 'default',
          TEMPORAL_JWT_KEY_SOURCE1: authorization.jwksUrl,
          ...(authorization.permissionsClaim ? { TEMPORAL_JWT_PERMISSIONS_CLAIM: authorization.permissionsClaim } : {}),
          // The server's own worker (system workflows) calls an internal frontend that needs no token.
          USE_INTERNAL_FRONTEND: 'true',
        }
      : {}),
  };
}

function dynamicConfigYaml(values: Record<string, unknown>): string {
  return Object.entries(values)
    .map(([key, value]) => `${key}:\n  - value: ${JSON.stringify(value)}\n`)
    .join('');
}

export interface TemporalServer {
  /** host:port of its frontend. */
  address: string;
  logFile: string;
  /** The variables it runs with. */
  environment: Record<string, string>;
  readonly child: Child | undefined;
  readonly running: boolean;
  /** (Re)starts on the same database and ports; resolves once the frontend answers. */
  start(): Promise<void>;
  /** SIGTERM, SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  /** `kill -9`. */
  kill(): Promise<void>;
}

/**
 * Creates the server (not started: call `start()`). `readyMetadata` goes with the readiness check, e.g. an
 * `authorization` header when the server has an authorizer.
 */
export function temporalServer(options: TemporalServerOptions, readyMetadata: Record<string, string> = {}): TemporalServer {
  const address = `127.0.0.1:${options.ports.FRONTEND_GRPC_PORT}`;
  const logFile = path.join(options.dir, 'temporal-server.log');
  const dynamicConfigFile = path.join(options.dir, 'dynamic-config.yaml');
  writeFileSync(dynamicConfigFile, dynamicConfigYaml(options.dynamicConfig ?? {}));
  const env = temporalServerEnvironment(options, dynamicConfigFile);
  let child: Child | undefined;
  return {
    address,
    logFile,
    environment: env,
    get child() {
      return child;
    },
    get running() {
      return child?.running ?? false;
    },
    async start() {
      if (child?.running) throw new Error('the Temporal server is already running');
      const services = ['frontend', ...(options.authorization ? ['internal-frontend'] : []), 'history', 'matching', 'worker'];
      child = startChild('temporal-server', options.build.server, ['start', ...services.flatMap((name) => ['--service', name])], { cwd: options.dir, env, logFile });
      await waitUntilReady(
        child,
        async () => {
          const connection = await Connection.connect({ address, connectTimeout: 2000, metadata: readyMetadata });
          try {
            await connection.workflowService.getSystemInfo({});
            return true;
          } finally {
            await connection.close();
          }
        },
        options.readyTimeoutMs ?? 120_000,
      );
    },
    stop: async (graceMs = 10_000) => child?.stop(graceMs),
    kill: async () => child?.kill(),
  };
}
