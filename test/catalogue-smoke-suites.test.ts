/**
 * The catalogue's end-to-end suites (common/smoke-suites.ts): what each kind needs, refused with the file, app and
 * field; the worker's clients per cluster; and the examples that use them.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadCatalogue, parseCatalogue } from '../common/catalogue';
import { smokeTestsBudgetMs } from '../common/smoke-suites';
import { argoWorkflowsOfClusters } from '../worker/argo-workflows-clients';
import { catalogueErrorOf } from './support/catalogue';

const ROOT = path.resolve(__dirname, '..');


const withStaging = (staging: string) => `apps:\n  whitehall:\n    repo: alphagov/whitehall\n    environments:\n      integration: {}\n      staging:\n${staging}`;
const argoCluster = "        argoWorkflows: { url: 'https://argo-workflows.staging.example/', tokenVariable: ARGO_WORKFLOWS_TOKEN_STAGING, namespace: apps }\n";

describe('smoke suites in the catalogue', () => {
  it('reads both kinds with their defaults, placeholders kept for the pipeline to fill in', () => {
    const catalogue = parseCatalogue(
      withStaging(
        `        approvers: [anyone]\n${argoCluster}        smokeAttempts: 2\n        smokeSuites:\n` +
          "          - { kind: argoWorkflow, workflowTemplate: govuk-e2e-tests, parameters: { testArgs: '--grep=@app-{app} --grep-invert=@not-{environment}' }, timeout: 20m }\n" +
          "          - { kind: githubWorkflow, repo: alphagov/publishing-e2e-tests, workflow: smoke-tests.yml, inputs: { tag: '{tag}' } }\n" +
          '          - { kind: githubWorkflow, name: own, workflow: e2e.yml, ref: release }\n',
      ),
      'apps.yaml',
    );
    const staging = catalogue.apps.get('whitehall')!.environments[1]!;
    expect(staging.argoWorkflows).toEqual({ url: 'https://argo-workflows.staging.example', tokenVariable: 'ARGO_WORKFLOWS_TOKEN_STAGING', namespace: 'apps' });
    expect(staging.smokeSuites).toEqual([
      { kind: 'argoWorkflow', name: 'govuk-e2e-tests', workflowTemplate: 'govuk-e2e-tests', parameters: { testArgs: '--grep=@app-{app} --grep-invert=@not-{environment}' }, timeoutMs: 20 * 60_000 },
      { kind: 'githubWorkflow', name: 'alphagov/publishing-e2e-tests smoke-tests.yml', repo: 'alphagov/publishing-e2e-tests', workflow: 'smoke-tests.yml', ref: 'main', inputs: { tag: '{tag}' }, timeoutMs: 30 * 60_000 },
      { kind: 'githubWorkflow', name: 'own', repo: 'alphagov/whitehall', workflow: 'e2e.yml', ref: 'release', inputs: {}, timeoutMs: 30 * 60_000 },
    ]);
    expect(catalogue.apps.get('whitehall')!.environments[0]!.smokeSuites).toEqual([]);
    // Two attempts of each suite to its timeout, the HTTP checks none here, and five minutes' room.
    expect(smokeTestsBudgetMs(staging)).toBe(2 * (20 * 60_000 + 2000) + 2 * (30 * 60_000 + 2000) * 2 + 5 * 60_000);
  });

  it.each([
    [
      'an argoWorkflow suite naming no WorkflowTemplate',
      `${argoCluster}        smokeSuites: [{ kind: argoWorkflow }]\n`,
      'apps.yaml: app "whitehall": field "environments.staging.smokeSuites[0].workflowTemplate": name the WorkflowTemplate to submit, such as govuk-e2e-tests',
    ],
    [
      'an argoWorkflow suite where the environment names no Argo Workflows',
      '        smokeSuites: [{ kind: argoWorkflow, workflowTemplate: govuk-e2e-tests }]\n',
      'apps.yaml: app "whitehall": field "environments.staging.smokeSuites[0]": an argoWorkflow suite needs the cluster\'s Argo Workflows: set environments.staging.argoWorkflows.url',
    ],
    [
      'an Argo Workflows without a URL',
      '        argoWorkflows: { namespace: apps }\n        smokeSuites: [{ kind: argoWorkflow, workflowTemplate: govuk-e2e-tests }]\n',
      'apps.yaml: app "whitehall": field "environments.staging.argoWorkflows.url": must be an http(s) URL',
    ],
    [
      'a token variable the logs would not redact',
      "        argoWorkflows: { url: 'https://argo.example', tokenVariable: ARGO_STAGING }\n",
      'apps.yaml: app "whitehall": field "environments.staging.argoWorkflows.tokenVariable": must name a variable the worker treats as secret: its name holds TOKEN, SECRET or PASSWORD',
    ],
    [
      'a WorkflowTemplate name Kubernetes refuses',
      `${argoCluster}        smokeSuites: [{ kind: argoWorkflow, workflowTemplate: GOVUK_e2e }]\n`,
      'apps.yaml: app "whitehall": field "environments.staging.smokeSuites[0].workflowTemplate": must be a Kubernetes resource name such as govuk-e2e-tests',
    ],
    [
      'a placeholder the pipeline does not fill in',
      `${argoCluster}        smokeSuites: [{ kind: argoWorkflow, workflowTemplate: govuk-e2e-tests, parameters: { testArgs: '--grep=@app-{application}' } }]\n`,
      'apps.yaml: app "whitehall": field "environments.staging.smokeSuites[0].parameters.testArgs": unknown placeholder {application}: use {app}, {environment} or {tag}',
    ],
    [
      'a kind there is not',
      '        smokeSuites: [{ kind: jenkinsJob, job: e2e }]\n',
      'apps.yaml: app "whitehall": field "environments.staging.smokeSuites[0].kind": kind must be argoWorkflow or githubWorkflow',
    ],
    [
      'a githubWorkflow suite naming no workflow',
      '        smokeSuites: [{ kind: githubWorkflow, inputs: { tag: "{tag}" } }]\n',
      'apps.yaml: app "whitehall": field "environments.staging.smokeSuites[0].workflow": name the workflow file to dispatch, such as smoke-tests.yml',
    ],
    [
      'an input that would hide the run\'s key',
      '        smokeSuites: [{ kind: githubWorkflow, workflow: smoke-tests.yml, inputs: { smokeRun: mine } }]\n',
      'apps.yaml: app "whitehall": field "environments.staging.smokeSuites[0].inputs": "smokeRun" is the pipeline\'s own input: it names the run',
    ],
    [
      'a suite timeout of zero',
      '        smokeSuites: [{ kind: githubWorkflow, workflow: smoke-tests.yml, timeout: 0s }]\n',
      'apps.yaml: app "whitehall": field "environments.staging.smokeSuites[0].timeout": must be longer than zero',
    ],
  ])('refuses %s, naming the field', (_, staging, expected) => {
    expect(catalogueErrorOf(withStaging(`        approvers: [anyone]\n${staging}`))).toBe(expected);
  });

  it('the worker refuses to start without the token of a cluster whose Argo Workflows a suite uses', () => {
    const catalogue = parseCatalogue(withStaging(`        approvers: [anyone]\n${argoCluster}        smokeSuites: [{ kind: argoWorkflow, workflowTemplate: govuk-e2e-tests }]\n`), 'apps.yaml');
    expect(() => argoWorkflowsOfClusters(catalogue, {})).toThrow(
      "the worker's settings are incomplete:\n  - ARGO_WORKFLOWS_TOKEN_STAGING is not set (the token of https://argo-workflows.staging.example, the Argo Workflows of staging, as apps.yaml says)",
    );
    const clientOf = argoWorkflowsOfClusters(catalogue, { ARGO_WORKFLOWS_TOKEN_STAGING: 'sa-token' });
    expect(clientOf(catalogue.apps.get('whitehall')!.environments[1]!.argoWorkflows!)).toBeDefined();
  });

  it('GOV.UK\'s example runs govuk-e2e-tests in each cluster, the tests tagged for the app and not excluded there', () => {
    const catalogue = loadCatalogue(path.join(ROOT, 'examples', 'govuk', 'apps.yaml'));
    const whitehall = catalogue.apps.get('whitehall')!;
    expect(whitehall.environments.map((env) => [env.name, env.argoWorkflows?.url, env.smokeSuites[0]])).toEqual(
      ['integration', 'staging', 'production'].map((env) => [
        env,
        `https://argo-workflows.eks.${env}.govuk.digital`,
        { kind: 'argoWorkflow', name: 'govuk-e2e-tests', workflowTemplate: 'govuk-e2e-tests', parameters: { testArgs: '--grep=@app-whitehall --grep-invert=@not-{environment}' }, timeoutMs: 20 * 60_000 },
      ]),
    );
  });

  it('the smoke-tests.yml example takes the key the pipeline dispatches it with, and carries it in its run-name', () => {
    const doc = parseYaml(readFileSync(path.join(ROOT, 'examples', 'github-actions', 'smoke-tests.yml'), 'utf8')) as {
      'run-name': string;
      on: { workflow_dispatch: { inputs: Record<string, { required?: boolean }> } };
    };
    expect(doc.on.workflow_dispatch.inputs.smokeRun).toMatchObject({ required: true });
    expect(doc['run-name']).toContain('${{ inputs.smokeRun }}');
  });
});
