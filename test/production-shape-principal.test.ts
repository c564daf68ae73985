/**
 * What Temporal 1.31 records of who sent a decision, on docker-compose.yml's server built from source with its JWT
 * authorizer and claim mapper (keys from an identity provider's JWKS) and `frontend.enablePrincipalPropagation`:
 * the ground a `temporal-principal` approval channel would stand on (docs/production.md, "Who can do what").
 *
 * The server stamps each history event with the principal of the call that wrote it: `{ type: 'jwt', name: <sub> }`
 * of a token it verified. A signal's event is written by the sender's call. (An update's events are written when the
 * worker completes its workflow task, so by the server's source they carry the worker's principal; not tested here.)
 */
import { Client, Connection } from '@temporalio/client';
import { IdentityProviderSimulator } from '../simulators/identity-provider';
import { approveSignal, WORKFLOW_TYPE } from '../workflows/definitions';
import { NAMESPACE, startProductionServer, type ProductionServer } from './support/production-server';
import { errorFrom } from './support/env';
import { uniqueTaskQueue } from './support/temporal';

describe("docker-compose.yml's Temporal server with its JWT authorizer and principal propagation", () => {
  const idp = new IdentityProviderSimulator({ host: '127.0.0.1' });
  let prod: ProductionServer;
  const clients: Client[] = [];

  async function clientOf(token?: string, metadata: Record<string, string> = {}): Promise<Client> {
    const connection = await Connection.connect({ address: prod.server.address, metadata: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...metadata } });
    const client = new Client({ connection, namespace: NAMESPACE });
    clients.push(client);
    return client;
  }
  const person = (subject: string, role: 'read' | 'write') => idp.mintAccessToken({ subject, permissions: [`${NAMESPACE}:${role}`] });

  beforeAll(async () => {
    await idp.start();
    prod = await startProductionServer({
      authorization: { jwksUrl: idp.jwksUrl },
      adminToken: idp.mintAccessToken({ subject: 'operator', permissions: ['temporal-system:admin'] }),
      dynamicConfig: { 'frontend.enablePrincipalPropagation': true },
    });
  }, 240_000);

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.connection.close().catch(() => undefined)));
    await prod?.close();
    await idp.close();
  }, 60_000);

  /** A pipeline-shaped workflow nobody runs: only what the server writes of it matters here. */
  async function startedBy(token: string): Promise<string> {
    const workflowId = `principal-${uniqueTaskQueue('run')}`;
    await (await clientOf(token)).workflow.start(WORKFLOW_TYPE, { taskQueue: uniqueTaskQueue('nobody'), workflowId, args: [] });
    return workflowId;
  }

  it('refuses a caller without a token, with a token it cannot verify, or whose token only lets it read', async () => {
    const workflowId = await startedBy(person('ci-bot', 'write'));
    expect((await errorFrom(async () => (await clientOf()).workflow.getHandle(workflowId).describe())).message).toMatch(/describe/i);
    const forged = `${person('alice', 'write').slice(0, -8)}AAAAAAAA`;
    await expect(clientOf(forged).then((client) => client.workflow.getHandle(workflowId).describe())).rejects.toThrow();
    const reader = await clientOf(person('viewer', 'read'));
    await expect(reader.workflow.getHandle(workflowId).describe()).resolves.toMatchObject({ workflowId });
    await expect(reader.workflow.getHandle(workflowId).signal(approveSignal, { environment: 'production', approver: 'viewer' })).rejects.toThrow();
  });

  it("stamps a signal's event with the verified subject of the sender's token, whatever name or principal header the sender claims", async () => {
    const workflowId = await startedBy(person('ci-bot', 'write'));
    // The headers the server itself uses between its services: a caller's are stripped at the frontend.
    const alice = await clientOf(person('alice@example.org', 'write'), { 'temporal-principal-type': 'jwt', 'temporal-principal-name': 'mallory' });
    await alice.workflow.getHandle(workflowId).signal(approveSignal, { environment: 'production', approver: 'mallory' });

    const { events } = await (await clientOf(person('viewer', 'read'))).workflow.getHandle(workflowId).fetchHistory();
    const started = events!.find((e) => e.workflowExecutionStartedEventAttributes);
    const signaled = events!.find((e) => e.workflowExecutionSignaledEventAttributes?.signalName === approveSignal.name);
    expect(started!.principal).toEqual(expect.objectContaining({ type: 'jwt', name: 'ci-bot' }));
    expect(signaled!.principal).toEqual(expect.objectContaining({ type: 'jwt', name: 'alice@example.org' }));
    // What the signal says of its sender is only what the sender typed.
    expect(Buffer.from(signaled!.workflowExecutionSignaledEventAttributes!.input!.payloads![0]!.data!).toString()).toContain('"approver":"mallory"');
  });
});
