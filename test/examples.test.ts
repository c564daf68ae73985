/**
 * The GitHub Actions examples in examples/github-actions: they parse, they declare what the pipeline and GOV.UK's
 * manual-deploy convention need, and the `deploy` commands they run work — each is run, as the job's shell would
 * expand it, through the real CLI against a worker on the shared dev server.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { startHarness, type PipelineHarness } from './support/pipeline';
import { stepsInHistory } from './support/history-steps';

const ROOT = path.resolve(__dirname, '..');
/** Lanes are per app and environment across the whole namespace: an app name of its own keeps this test apart. */
const APP = `examples-${randomBytes(3).toString('hex')}`;
/** Deployed as GOV.UK's apps are: a published release v<N> starts it, and its images are tagged v<N>. */
const RELEASED_APP = `released-${randomBytes(3).toString('hex')}`;
const EXAMPLES = path.join(ROOT, 'examples', 'github-actions');

interface Step {
  name?: string;
  id?: string;
  if?: string;
  uses?: string;
  run?: string;
  env?: Record<string, string>;
  with?: Record<string, unknown>;
  'working-directory'?: string;
}

interface Job {
  environment?: string;
  env?: Record<string, string>;
  steps: Step[];
}

interface Workflow {
  name: string;
  'run-name'?: string;
  on: Record<string, { inputs?: Record<string, { required?: boolean; type?: string; options?: string[] }>; secrets?: Record<string, unknown> } | null>;
  permissions?: Record<string, string>;
  env?: Record<string, string>;
  jobs: Record<string, Job>;
}

const EXAMPLE_FILES = ['approve.yml', 'build-image.yml', 'deploy-on-merge.yml', 'deploy-on-release.yml', 'manual-deploy.yml'];
/** The audience the worker expects by default (DEPLOY_OIDC_AUDIENCE). */
const OIDC_AUDIENCE = 'deploy-pipelines';

function example(file: string): Workflow {
  const doc = parseYaml(readFileSync(path.join(EXAMPLES, file), 'utf8')) as Workflow;
  expect(doc).toMatchObject({ name: expect.any(String), on: expect.any(Object), jobs: expect.any(Object) });
  return doc;
}

/** Replaces each `${{ expression }}` with its value; an expression the test does not know is an error. */
function evaluate(text: string, values: Record<string, string>): string {
  return text.replace(/\$\{\{\s*(.+?)\s*\}\}/g, (_, expression: string) => {
    const value = values[expression];
    if (value === undefined) throw new Error(`the test has no value for the expression \${{ ${expression} }} in "${text}"`);
    return value;
  });
}

/** Words of a one-line shell command: double quotes group, `$NAME` expands from `env`. Enough for these examples. */
function shellWords(command: string, env: Record<string, string>): string[] {
  const words: string[] = [];
  for (const [, quoted, bare] of command.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)) {
    const word = (quoted ?? bare)!;
    if (/[|;&<>`]/.test(bare ?? '')) throw new Error(`"${command}" is more than one simple command`);
    words.push(
      word.replace(/\$(?:\{([A-Z_][A-Z0-9_]*)\}|([A-Z_][A-Z0-9_]*))/g, (_, braced?: string, plain?: string) => {
        const name = (braced ?? plain)!;
        if (env[name] === undefined) throw new Error(`$${name} is not set for "${command}"`);
        return env[name]!;
      }),
    );
  }
  return words;
}

/**
 * The step that runs the deploy CLI (the one `condition` names, when the job has more), with its effective
 * environment (workflow, job, step), secrets left out.
 */
function deployStep(doc: Workflow, values: Record<string, string>, condition?: string): { args: string[]; env: Record<string, string> } {
  const [job] = Object.values(doc.jobs);
  const steps = job!.steps.filter((step) => step.run?.includes(' deploy ') && step.if === condition);
  expect(steps).toHaveLength(1);
  const step = steps[0]!;
  const declared = { ...doc.env, ...job!.env, ...step.env };
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(declared)) {
    if (/secrets\.|github\.token/.test(value)) continue;
    env[name] = evaluate(value, values);
  }
  const words = shellWords(evaluate(step.run!.trim(), values), env);
  // --no: npx must never fetch an unrelated "deploy" package from the registry when the local bin is missing.
  expect(words.slice(0, 3)).toEqual(['npx', '--no', 'deploy']);
  expect(step['working-directory']).toBe('deploy-pipelines');
  return { args: words.slice(3), env: { ...declared } };
}

/** The job's step that asks GitHub for an ID token, and the expression that hands the token on. */
function oidcTokenStep(doc: Workflow): string {
  expect(doc.permissions).toMatchObject({ 'id-token': 'write', contents: 'read' });
  const [job] = Object.values(doc.jobs);
  const steps = job!.steps.filter((step) => step.uses?.startsWith('actions/github-script@'));
  expect(steps).toHaveLength(1);
  expect(steps[0]!.id).toBeDefined();
  expect(steps[0]!.with).toMatchObject({ 'result-encoding': 'string', script: `return await core.getIDToken('${OIDC_AUDIENCE}')` });
  return `steps.${steps[0]!.id}.outputs.result`;
}

/** The Temporal key can approve or deploy by hand: it comes from a GitHub environment of the job, never the workflow. */
function expectKeysInJobEnvironment(doc: Workflow): void {
  expect(JSON.stringify(doc.env ?? {})).not.toContain('secrets.');
  for (const job of Object.values(doc.jobs)) {
    expect(job.environment).toEqual(expect.stringMatching(/^[a-z-]+$/));
    expect(JSON.stringify(job.env ?? {})).not.toContain('secrets.');
  }
}


const packageJson = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };

describe('GitHub Actions examples', () => {
  let h: PipelineHarness;
  beforeAll(async () => {
    h = await startHarness({ apps: { [APP]: {}, [RELEASED_APP]: { tagScheme: 'release-tag' } } });
  });
  afterAll(async () => h?.close());

  it('pass inputs to the shell as variables, never as text pasted into the script', () => {
    for (const file of EXAMPLE_FILES) {
      for (const job of Object.values(example(file).jobs)) {
        for (const step of job.steps) expect(step.run ?? '').not.toMatch(/\$\{\{[^}]*\b(inputs|github\.event)\./);
      }
    }
  });

  it('deploy-on-release starts the pipeline of the tag a published release names, as GOV.UK deploys', async () => {
    const doc = example('deploy-on-release.yml');
    expect(doc.on).toEqual({ release: { types: ['released'] } });
    expect(doc.permissions).toEqual({ contents: 'read' });
    expectKeysInJobEnvironment(doc);
    const sha = await h.stack.merge(RELEASED_APP, { buildImage: false });
    h.stack.github.addTag(h.stack.repoOf(RELEASED_APP), 'v12', sha);
    await h.stack.pushImage(RELEASED_APP, 'v12');
    const values = { 'vars.DEPLOY_APP || github.event.repository.name': RELEASED_APP, 'github.event.release.tag_name': 'v12', 'github.actor': 'octocat', 'vars.DEPLOY_CATALOGUE': h.stack.cataloguePath };
    const { args } = deployStep(doc, values);
    expect(args).toEqual(['start', '--app', RELEASED_APP, '--ref', 'v12', '--requested-by', 'release v12 by octocat']);
    const started = await h.cli(args);
    expect(started).toMatchObject({ code: 0, out: [`started: deploy-${RELEASED_APP}-${sha}`] });
    const result = await h.client.workflow.getHandle(`deploy-${RELEASED_APP}-${sha}`).result();
    expect(result).toMatchObject({ status: 'SUCCEEDED', tag: 'v12' });
    expect(h.stack.release.deployments.filter((d) => d.repo === h.stack.repoOf(RELEASED_APP)).map((d) => [d.environment, d.version])).toEqual([
      ['integration', 'v12'],
      ['staging', 'v12'],
      ['production', 'v12'],
    ]);
  });

  it('the CLI they call is the package bin, built from client/cli.ts with its shebang', () => {
    expect(packageJson.bin.deploy).toBe('dist/client/cli.js');
    expect(readFileSync(path.join(ROOT, 'client', 'cli.ts'), 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
  });

  it('deploy-on-merge starts one pipeline per commit with Temporal Cloud settings from secrets, and the pipeline dispatches build-image', async () => {
    const doc = example('deploy-on-merge.yml');
    expect(Object.keys(doc.on)).toEqual(['workflow_call']);
    expect(doc.on.workflow_call?.inputs?.app).toMatchObject({ required: true, type: 'string' });
    expect(Object.keys(doc.on.workflow_call?.secrets ?? {}).sort()).toEqual(['TEMPORAL_ADDRESS', 'TEMPORAL_API_KEY', 'TEMPORAL_NAMESPACE']);
    // It starts pipelines and nothing else: no token that could speak for a person.
    expect(doc.permissions).toEqual({ contents: 'read' });

    // A commit whose image CI has not built yet: the pipeline dispatches the image build.
    const sha = await h.stack.merge(APP, { buildImage: false });
    const values = { 'github.sha': sha, 'inputs.app': APP, 'github.workflow': 'CI', 'github.run_id': '42' };
    const { args, env } = deployStep(doc, values);
    for (const name of ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'TEMPORAL_API_KEY']) expect(env[name]).toBe(`\${{ secrets.${name} }}`);
    expect(args).toEqual(['start', '--app', APP, '--ref', sha, '--requested-by', 'CI run 42']);

    const first = await h.cli(args);
    expect(first).toMatchObject({ code: 0, out: [`started: deploy-${APP}-${sha}`] });
    // A re-run of the job attaches to the same pipeline.
    const again = await h.cli(args);
    expect(again).toMatchObject({ code: 0, out: [`already running: deploy-${APP}-${sha}`] });
    expect((await h.client.workflow.getHandle(`deploy-${APP}-${sha}`).result()).status).toBe('SUCCEEDED');

    const build = example('build-image.yml');
    const [dispatch] = h.stack.github.dispatches.filter((d) => d.inputs.gitRef === sha);
    expect(dispatch).toBeDefined();
    expect(dispatch!.workflowFile).toBe('build-image.yml');
    const declared = build.on.workflow_dispatch?.inputs ?? {};
    // GitHub refuses a dispatch with an undeclared input, or without a required one.
    for (const input of Object.keys(dispatch!.inputs)) expect(Object.keys(declared)).toContain(input);
    for (const [input, spec] of Object.entries(declared)) if (spec.required) expect(dispatch!.inputs).toHaveProperty(input);
    // The pipeline finds its build run by the commit in the run's name.
    const runName = evaluate(build['run-name']!, { 'inputs.gitRef': String(dispatch!.inputs.gitRef) });
    expect(runName).toBe(`Build image ${sha}`);
  });

  it('manual-deploy takes gitRef and environment, as GOV.UK\'s "Deploy" workflow does, and follows the deploy to its end', async () => {
    const doc = example('manual-deploy.yml');
    expect(Object.keys(doc.on)).toEqual(['workflow_dispatch']);
    const inputs = doc.on.workflow_dispatch?.inputs ?? {};
    expect(Object.keys(inputs).sort()).toEqual(['environment', 'gitRef']);
    expect(inputs.gitRef).toMatchObject({ required: true, type: 'string' });
    expect(inputs.environment).toMatchObject({ required: true, type: 'choice', options: ['integration', 'staging', 'production'] });

    // A branch, not a SHA: the CLI resolves it with the catalogue and GITHUB_TOKEN.
    const sha = await h.stack.merge(APP);
    // The run GitHub makes when octocat starts the workflow, and the token its job gets: the worker checks both.
    const runId = h.stack.github.startRun(h.stack.repoOf(APP), { workflowFile: 'deploy.yml', displayTitle: `deploy ${APP} main to staging`, actor: 'octocat' });
    const token = h.stack.oidc.mintToken({ repository: h.stack.repoOf(APP), audience: OIDC_AUDIENCE, runId, actor: 'octocat', workflowFile: 'deploy.yml' });
    const values = {
      'inputs.gitRef': 'main',
      'inputs.environment': 'staging',
      'github.actor': 'octocat',
      'vars.DEPLOY_APP || github.event.repository.name': APP,
      [oidcTokenStep(doc)]: token,
    };
    expectKeysInJobEnvironment(doc);
    // The worker takes the person deploying from the run GitHub names this way.
    expect(evaluate(doc['run-name']!, values)).toBe(`deploy ${APP} main to staging`);
    const { args, env } = deployStep(doc, values);
    expect(env.GITHUB_TOKEN).toBe('${{ github.token }}');
    expect(args).toEqual(['start', '--app', APP, '--ref', 'main', '--environment', 'staging', '--wait', '--requested-by', 'octocat', '--oidc-token', token]);

    const run = await h.cli(args);
    expect(run.code).toBe(0);
    const status = await h.status(`deploy-${APP}-${sha}-staging-manual`);
    expect(status).toMatchObject({ status: 'SUCCEEDED', trigger: 'manual', sha });
    // The starter was verified by the run's token (a deploy there needs nobody's approval, so none is recorded).
    const events = (await h.handle(`deploy-${APP}-${sha}-staging-manual`).fetchHistory()).events ?? [];
    expect(stepsInHistory(events).filter((s) => s.activityType === 'verifyIdentity')).toEqual([expect.objectContaining({ completed: true })]);
    expect(status.environments.map((e) => [e.environment, e.state])).toEqual([['staging', 'DEPLOYED']]);
  });

  it('approve sends a decision with a token naming its run, whose name says the decision, pipeline and environment', () => {
    const doc = example('approve.yml');
    expect(Object.keys(doc.on)).toEqual(['workflow_dispatch']);
    const inputs = doc.on.workflow_dispatch?.inputs ?? {};
    expect(Object.keys(inputs).sort()).toEqual(['comment', 'decision', 'environment', 'pipeline']);
    expect(inputs.pipeline).toMatchObject({ required: true, type: 'string' });
    expect(inputs.decision).toMatchObject({ required: true, type: 'choice', options: ['approve', 'reject'] });
    expect(inputs.environment).toMatchObject({ required: true, type: 'choice' });
    expect(inputs.comment).toMatchObject({ type: 'string' });
    expect(inputs.comment?.required).not.toBe(true);
    expectKeysInJobEnvironment(doc);

    const pipeline = `deploy-${APP}-${'a'.repeat(40)}`;
    const token = 'eyJ.token-of-this-run.sig';
    for (const decision of ['approve', 'reject']) {
      const values = { 'inputs.decision': decision, 'inputs.pipeline': pipeline, 'inputs.environment': 'production', 'inputs.comment': 'Checked on staging', [oidcTokenStep(doc)]: token };
      // What the worker reads back from GitHub's run: exactly `<decision> <pipeline ID> <environment>`.
      expect(evaluate(doc['run-name']!, values)).toBe(`${decision} ${pipeline} production`);
      const { args, env } = deployStep(doc, values, `inputs.decision == '${decision}'`);
      for (const name of ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'TEMPORAL_API_KEY']) expect(env[name]).toBe(`\${{ secrets.${name} }}`);
      const why = decision === 'approve' ? '--comment' : '--reason';
      expect(args).toEqual([decision, pipeline, '--environment', 'production', why, 'Checked on staging', '--oidc-token', token]);
      // The person is the one who started the run: no name of their own choosing goes with the decision.
      expect(args).not.toContain('--approver');
    }
  });

  it('build-image is dispatched with gitRef and names its run after it', () => {
    const doc = example('build-image.yml');
    expect(Object.keys(doc.on)).toEqual(['workflow_dispatch']);
    expect(doc.on.workflow_dispatch?.inputs).toEqual({ gitRef: expect.objectContaining({ required: true, type: 'string' }) });
    expect(doc['run-name']).toBe('Build image ${{ inputs.gitRef }}');
    const checkout = Object.values(doc.jobs)[0]!.steps.find((step) => step.uses?.startsWith('actions/checkout@'));
    expect(checkout?.with?.ref).toBe('${{ inputs.gitRef }}');
  });
});
