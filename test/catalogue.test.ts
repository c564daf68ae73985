import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imageTagPath, loadCatalogue, parseCatalogue } from '../common/catalogue';
import { catalogueErrorOf } from './support/catalogue';

const VALID = `
defaults:
  approvalTimeout: 3d
  approval:
    approvers: ['@alphagov/release-managers']
apps:
  whitehall:
    repo: alphagov/whitehall
    tagScheme: release-tag
    environments:
      integration:
        smokeChecks:
          - url: http://127.0.0.1:9/whitehall/healthcheck
            expectBodyContains: ok
            timeout: 2s
      staging:
        continuousDeployment: true
      production:
        approvers: [alice, bob]
  router:
    repo: alphagov/router
`;


describe('app catalogue', () => {
  it('reads apps with defaults filled in and environments in file order', () => {
    const catalogue = parseCatalogue(VALID, 'apps.yaml');
    const whitehall = catalogue.apps.get('whitehall')!;
    expect(whitehall.environments.map((e) => [e.name, e.continuousDeployment])).toEqual([
      ['integration', true],
      ['staging', true],
      ['production', false],
    ]);
    expect(whitehall.approvalTimeoutMs).toBe(3 * 86_400_000);
    expect(whitehall.tagScheme).toBe('release-tag');
    expect(whitehall.imageRepository).toBe('whitehall');
    expect(whitehall.environments[0]!.smokeChecks[0]).toMatchObject({ expectStatus: 200, timeoutMs: 2000, expectBodyContains: 'ok' });
    expect(whitehall.environments[0]!.argocdApplication).toBe('whitehall-integration');
    expect(whitehall.environments[2]!.approvers).toEqual(['alice', 'bob']);
    const router = catalogue.apps.get('router')!;
    expect(router.environments.map((e) => e.name)).toEqual(['integration', 'staging', 'production']);
    expect(router.tagScheme).toBe('sha');
  });

  it('fails closed on who may decide: approvers written out, decisions verified, no self-approval, anyone may deploy by hand', () => {
    const catalogue = parseCatalogue(VALID, 'apps.yaml');
    const [integration, staging, production] = catalogue.apps.get('router')!.environments;
    expect(integration).toMatchObject({ needsApproval: false, approvers: ['@alphagov/release-managers'], identity: 'verified', deployers: ['anyone'] });
    expect(staging).toMatchObject({ needsApproval: true, approvers: ['@alphagov/release-managers'], allowSelfApproval: false, identity: 'verified' });
    expect(production).toMatchObject({ needsApproval: true, allowSelfApproval: false, identity: 'verified' });
    const whitehallProduction = catalogue.apps.get('whitehall')!.environments[2]!;
    expect(whitehallProduction).toMatchObject({ approvers: ['alice', 'bob'], allowSelfApproval: false });

    const gated = (env: string) => `apps:\n  router:\n    repo: alphagov/router\n    environments:\n      integration: {}\n      production: ${env}\n`;
    expect(catalogueErrorOf(gated('{}'))).toBe('apps.yaml: app "router": environment "production" needs approval and names no approvers: list logins or @org/teams, or write approvers: [anyone]');
    expect(catalogueErrorOf(gated('{ approvers: [] }'))).toMatch(/field "environments\.production\.approvers": list logins or @org\/teams, or write \[anyone\]/);
    expect(catalogueErrorOf(gated('{ approvers: [anyone, alice] }'))).toMatch(/"anyone" stands alone: it lets everyone/);
    expect(catalogueErrorOf(gated('{ approvers: [alice], approval: { identity: maybe } }'))).toMatch(/field "environments\.production\.approval\.identity"/);
    const open = parseCatalogue(gated('{ approvers: [anyone], approval: { identity: claimed }, deployers: [bob, "@alphagov/leads"] }'), 'apps.yaml').apps.get('router')!;
    expect(open.environments[1]).toMatchObject({ approvers: ['anyone'], identity: 'claimed', deployers: ['bob', '@alphagov/leads'] });
    // A continuous environment needs nobody's approval, so it may name nobody.
    expect(parseCatalogue(gated('{ continuousDeployment: true }'), 'apps.yaml').apps.get('router')!.environments[1]).toMatchObject({ needsApproval: false });
  });

  it.each([
    ['apps:\n  whitehall: {repo: [unclosed', /^apps\.yaml: not valid YAML at line \d+/],
    ['apps:\n  whitehall:\n    repo: not-a-repo\n', /^apps\.yaml: app "whitehall": field "repo": invalid repository "not-a-repo"/],
    ['apps:\n  Bad_App:\n    repo: a/b\n', /^apps\.yaml: field "apps\.Bad_App": invalid app name "Bad_App"/],
    ['apps:\n  w:\n    repo: a/b\n    colour: blue\n', /^apps\.yaml: app "w": entry: .*colour/],
    [
      'apps:\n  w:\n    repo: a/b\n    environments:\n      staging:\n        smokeChecks:\n          - url: ftp://x\n',
      /^apps\.yaml: app "w": field "environments\.staging\.smokeChecks\[0\]\.url": must be an http\(s\) URL/,
    ],
    ['apps:\n  w:\n    repo: a/b\n    environments:\n      "../prod": {}\n', /^apps\.yaml: app "w": field "environments\.\.\.\/prod": invalid environment/],
    ['apps:\n  w:\n    repo: a/b\n    approvalTimeout: soon\n', /^apps\.yaml: app "w": field "approvalTimeout": duration "soon"/],
    ['apps:\n  w:\n    repo: a/b\n    environments: {}\n', /^apps\.yaml: app "w": field "environments": list at least one environment/],
    ['apps:\n  w:\n    repo: a/b\n    environments:\n      staging:\n        syncTimeout: 0s\n', /^apps\.yaml: app "w": field "environments\.staging\.syncTimeout": must be longer than zero/],
    ['apps:\n  w:\n    repo: a/b\n    build: { timeout: 0 }\n', /^apps\.yaml: app "w": field "build\.timeout": must be longer than zero/],
    ['apps:\n  w:\n    repo: a/b\n    approvalTimeout: 0d\n', /^apps\.yaml: app "w": field "approvalTimeout": must be longer than zero/],
    ['apps:\n  w:\n    repo: a/b\n    environments:\n      staging:\n        smokeChecks: [{ url: "http://127.0.0.1:9/", timeout: 0ms }]\n', /^apps\.yaml: app "w": field "environments\.staging\.smokeChecks\[0\]\.timeout": must be longer than zero/],
    ['defaults:\n  freezeRecheckInterval: 0s\napps:\n  w:\n    repo: a/b\n', /^apps\.yaml: field "defaults\.freezeRecheckInterval": must be longer than zero/],
    ['defaults:\n  approvalTimeout: 0\napps:\n  w:\n    repo: a/b\n', /^apps\.yaml: field "defaults\.approvalTimeout": must be longer than zero/],
    ['defaults:\n  stepRetry: { maximumInterval: 0s }\napps:\n  w:\n    repo: a/b\n', /^apps\.yaml: field "defaults\.stepRetry\.maximumInterval": must be at least 1s/],
    ['apps:\n  w:\n    repo: a/b\n    build: { timeout: -5 }\n', /^apps\.yaml: app "w": field "build\.timeout": /],
    ['apps:\n  w:\n    repo: a/b\n    onDivergence: sometimes\n', /^apps\.yaml: app "w": field "onDivergence": /],
    ['nothing: here\n', /^apps\.yaml: /],
  ])('refuses %j with a message naming file, app and field', (text, expected) => {
    expect(catalogueErrorOf(text)).toMatch(expected);
  });

  it('names registries, where each app is built, its pull-through cache and where deployed-to tags go', () => {
    const catalogue = parseCatalogue(
      `
defaults: { environments: [integration] }
registries:
  ghcr: { type: oci, url: https://ghcr.io, usernameEnv: GHCR_USERNAME, passwordEnv: GHCR_TOKEN }
  ecr-cache: { type: ecr, registryId: "123456789012" }
apps:
  frontend:
    repo: alphagov/frontend
    imageRepository: alphagov/frontend
    image:
      registry: ghcr
      cache: { registry: ecr-cache, repository: ghcr/alphagov/frontend }
      deployedToTags: cache
      writeDigest: true
  router:
    repo: alphagov/router
`,
      'apps.yaml',
    );
    expect(catalogue.registries.get('ghcr')).toEqual({ name: 'ghcr', type: 'oci', url: 'https://ghcr.io', usernameEnv: 'GHCR_USERNAME', passwordEnv: 'GHCR_TOKEN' });
    expect(catalogue.registries.get('ecr')).toEqual({ name: 'ecr', type: 'ecr' });
    const cache = { registry: 'ecr-cache', repository: 'ghcr/alphagov/frontend' };
    expect(catalogue.apps.get('frontend')!.image).toEqual({ built: { registry: 'ghcr', repository: 'alphagov/frontend' }, cache, deployedToTags: cache, writeDigest: true });
    // As before: ECR, the app's name as its repository, tags where it is built, no digest in the charts.
    expect(catalogue.apps.get('router')!.image).toEqual({ built: { registry: 'ecr', repository: 'router' }, deployedToTags: { registry: 'ecr', repository: 'router' }, writeDigest: false });
  });

  it.each([
    ['apps: { a: { repo: o/a, image: { registry: ghcr } } }', /app "a": field "image.registry": no registry "ghcr" in the catalogue's registries \(ecr\)/],
    ['apps: { a: { repo: o/a, image: { deployedToTags: cache } } }', /app "a": field "image.deployedToTags": "cache" needs an image.cache/],
    ['registries: { ghcr: { type: oci, url: https://ghcr.io, passwordEnv: GHCR_TOKEN } }\napps: {}', /field "registries.ghcr": name both usernameEnv and passwordEnv/],
    ['registries: { ghcr: { type: oci, url: https://ghcr.io, usernameEnv: U, passwordEnv: GHCR_PAT } }\napps: {}', /field "registries.ghcr.passwordEnv": must name a variable the worker treats as secret/],
    ['registries: { ghcr: { type: oci, url: ftp://ghcr.io } }\napps: {}', /field "registries.ghcr.url": must be an http\(s\) URL/],
  ])('refuses the registry settings %j', (text, expected) => {
    expect(catalogueErrorOf(text)).toMatch(expected);
  });

  it('names the file when it cannot be read', () => {
    expect(() => loadCatalogue('no/such/apps.yaml')).toThrow('no/such/apps.yaml: cannot read the app catalogue: ENOENT');
  });

  it('loads from a file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'catalogue-'));
    const file = join(dir, 'apps.yaml');
    writeFileSync(file, VALID);
    expect(loadCatalogue(file).apps.size).toBe(2);
  });

  it('builds the GOV.UK image-tag path and refuses names that climb out of it', () => {
    const catalogue = parseCatalogue(VALID, 'apps.yaml');
    expect(imageTagPath(catalogue, 'whitehall', 'staging')).toBe('charts/app-config/image-tags/staging/whitehall');
    expect(() => imageTagPath(catalogue, '../whitehall', 'staging')).toThrow(/invalid app name/);
    expect(() => imageTagPath(catalogue, 'whitehall', 'staging/../../x')).toThrow(/invalid environment/);
  });
});

describe("the GOV.UK example catalogue (examples/govuk/apps.yaml)", () => {
  const catalogue = loadCatalogue(join(__dirname, '..', 'examples', 'govuk', 'apps.yaml'));

  it('gives an app of one line the environments, each cluster\'s Argo CD and app of apps, naming, smoke checks and promotion rule', () => {
    const publisher = catalogue.apps.get('publisher')!;
    expect(publisher.repo).toBe('alphagov/publisher');
    expect(publisher.promotion).toBe('chartsFlags');
    expect(publisher.environments.map((env) => [env.name, env.argocd.url, env.argocd.tokenVariable, env.argocd.appOfApps, env.argocdApplication])).toEqual([
      ['integration', 'https://argo.eks.integration.govuk.digital', 'ARGOCD_TOKEN_INTEGRATION', 'app-config', 'publisher'],
      ['staging', 'https://argo.eks.staging.govuk.digital', 'ARGOCD_TOKEN_STAGING', 'app-config', 'publisher'],
      ['production', 'https://argo.eks.production.govuk.digital', 'ARGOCD_TOKEN_PRODUCTION', 'app-config', 'publisher'],
    ]);
    expect(publisher.environments[1]!.smokeChecks).toEqual([{ name: 'healthcheck', url: 'https://publisher.eks.staging.govuk.digital/healthcheck/ready', expectStatus: 200, expectBodyContains: undefined, timeoutMs: 5000 }]);
    expect(catalogue.apps.get('router')).toMatchObject({ repo: 'alphagov/router', tagScheme: 'release-tag', promotion: 'chartsFlags' });
  });

  it("lets an app's own environment settings win over the defaults", () => {
    const own = parseCatalogue(
      'defaults:\n  repo: alphagov/{app}\n  environments:\n    integration: { argocdApplication: "{app}", smokeAttempts: 5 }\napps:\n  a: { environments: { integration: { smokeAttempts: 2 } } }\n  b:\n',
      'apps.yaml',
    );
    expect(own.apps.get('a')!.environments[0]).toMatchObject({ argocdApplication: 'a', smokeAttempts: 2 });
    expect(own.apps.get('b')!.environments[0]).toMatchObject({ argocdApplication: 'b', smokeAttempts: 5 });
    expect(own.apps.get('b')!.promotion).toBe('catalogue');
  });
});
