/** The dev server started by the jest global setup is up, with our search attributes registered. */
import { Client } from '@temporalio/client';
import { SearchAttributeType } from '@temporalio/common';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import { SEARCH_ATTRIBUTES } from '../workflows/definitions';
import { connectClient, connectNative, testAddress, testNamespace, workflowBundlePath } from './support/temporal';
import { existsSync } from 'node:fs';

const EXPECTED = ['DeployApp', 'DeployCommit', 'DeployEnvironment', 'DeployStatus', 'DeployTrigger'];

describe('Temporal dev server for tests', () => {
  let client: Client;

  beforeAll(async () => {
    client = await connectClient();
  });

  afterAll(async () => {
    await client?.connection.close();
  });

  it('is reachable', async () => {
    expect(testAddress()).toMatch(/^[\w.-]+:\d+$/);
    const info = await client.connection.workflowService.getSystemInfo({});
    expect(info.serverVersion).toBeTruthy();
    const ns = await client.connection.workflowService.describeNamespace({ namespace: testNamespace() });
    expect(ns.namespaceInfo?.name).toBe(testNamespace());
  });

  it('registers our five search attributes as Keyword', async () => {
    expect(SEARCH_ATTRIBUTES.map((k) => k.name).sort()).toEqual(EXPECTED);
    const { customAttributes } = await client.connection.operatorService.listSearchAttributes({
      namespace: testNamespace(),
    });
    const keyword = encodeSearchAttributeIndexedValueType(SearchAttributeType.KEYWORD);
    for (const name of EXPECTED) {
      expect({ name, type: customAttributes?.[name] }).toEqual({ name, type: keyword });
    }
  });

  it('accepts a visibility query on DeployStatus', async () => {
    // Other test files share this server and park pipelines at AWAITING_APPROVAL; a value none of them writes
    // keeps the answer ours to predict.
    const found: string[] = [];
    for await (const wf of client.workflow.list({ query: `DeployStatus = "NO_PIPELINE_HAS_THIS_STATUS" AND DeployApp = "${process.pid}"` })) {
      found.push(wf.workflowId);
    }
    expect(found).toEqual([]);
  });

  it('rejects a query on an unknown attribute (so the check above is meaningful)', async () => {
    const iterate = async () => {
      for await (const wf of client.workflow.list({ query: 'NoSuchAttribute = "x"' })) void wf;
    };
    await expect(iterate()).rejects.toThrow();
  });

  it('accepts native (worker) connections', async () => {
    const native = await connectNative();
    await native.close();
  });

  it('has a prebundled workflow bundle', () => {
    expect(existsSync(workflowBundlePath())).toBe(true);
  });
});
