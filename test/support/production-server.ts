/**
 * The production shape of docker-compose.yml on this machine: PostgreSQL, the schema job, temporal-server built
 * from source, and the admin-tools job (harness/postgresql.ts, harness/temporal-server.ts), as the compose file
 * starts them, in folders of their own that `close()` removes. Every process is SIGKILLed should the test process
 * exit first.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../../harness/free-ports';
import { startPostgreSQL, type PostgreSQL } from '../../harness/postgresql';
import { findTemporalCli } from '../../harness/temporal-cli';
import {
  findTemporalServer,
  freeServerPorts,
  registerSearchAttributes,
  setUpSchema,
  temporalServer,
  type JwtAuthorization,
  type TemporalServer,
  type TemporalServerBuild,
} from '../../harness/temporal-server';
import type { DevServer } from './crash-harness';

export const NAMESPACE = 'default';

export interface ProductionServer {
  build: TemporalServerBuild;
  db: PostgreSQL;
  server: TemporalServer;
  /** What the crash harness needs of a server it shares (its `dbFile`: PostgreSQL's data folder). */
  shared: DevServer;
  /** The output of the schema job and of the admin-tools job, for the suite to check. */
  schemaOutput: string;
  registrationOutput: string;
  close(): Promise<void>;
}

export interface ProductionServerOptions {
  dynamicConfig?: Record<string, unknown>;
  authorization?: JwtAuthorization;
  /** An `authorization` header for the readiness check and the admin-tools job, when the server has an authorizer. */
  adminToken?: string;
}

export async function startProductionServer(options: ProductionServerOptions = {}): Promise<ProductionServer> {
  const [build, cliPath] = await Promise.all([findTemporalServer(), findTemporalCli()]);
  // Separate folders: PostgreSQL's user must reach its own, which a folder inside ours would not let it.
  const dbDir = await mkdtemp(path.join(tmpdir(), 'deploy-pg-'));
  const serverDir = await mkdtemp(path.join(tmpdir(), 'deploy-temporal-'));
  let db: PostgreSQL | undefined;
  let server: TemporalServer | undefined;
  const close = async () => {
    await server?.kill();
    await db?.stop();
    await rm(serverDir, { recursive: true, force: true });
    await rm(dbDir, { recursive: true, force: true });
  };
  try {
    db = await startPostgreSQL({ dir: dbDir, port: await freePort(), user: 'temporal', password: randomBytes(12).toString('hex') });
    const schemaOutput = await setUpSchema(build, db);
    const readyMetadata: Record<string, string> = options.adminToken ? { authorization: `Bearer ${options.adminToken}` } : {};
    server = temporalServer({ build, db, dir: serverDir, ports: await freeServerPorts(), dynamicConfig: options.dynamicConfig, authorization: options.authorization }, readyMetadata);
    await server.start();
    const registrationOutput = await registerSearchAttributes({
      cliPath,
      address: server.address,
      namespace: NAMESPACE,
      extraEnv: options.adminToken ? { TEMPORAL_API_KEY: options.adminToken, TEMPORAL_TLS: 'false' } : {},
    });
    const theServer = server;
    const shared: DevServer = {
      address: theServer.address,
      dbFile: path.join(dbDir, 'data'),
      logFile: theServer.logFile,
      get pid() {
        return theServer.child?.pid;
      },
      get running() {
        return theServer.running;
      },
      start: () => theServer.start(),
      kill: () => theServer.kill(),
    };
    return { build, db, server, shared, schemaOutput, registrationOutput, close };
  } catch (err) {
    await close();
    throw err;
  }
}
