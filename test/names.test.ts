import { releaseVersion, validateAppName, validateApprover, validateEnvironmentName, validateGitRef, validateImageTag } from '../common/names';

describe('name patterns', () => {
  it.each(['main', 'release/v2', 'v3231', 'a1b2c3d', 'feature/x-1_2', '0123456789abcdef0123456789abcdef01234567'])('accepts git ref %s', (ref) => {
    expect(validateGitRef(ref)).toBe(ref);
  });

  it.each(['', '-x', '--upload-pack=evil', 'a..b', '../main', 'main/', 'a//b', 'x.lock', 'ma in', 'main;rm -rf /', '$(id)', 'a`b`', 'ref@{1}', '.hidden', 'a/.b', 'x'.repeat(201)])(
    'refuses git ref %j',
    (ref) => {
      expect(() => validateGitRef(ref)).toThrow(/invalid git ref/);
    },
  );

  it.each(['../etc', 'White', 'a_b', 'a b', 'a;b', '-a', 'a-', '', 'ｗhitehall'])('refuses app name %j', (name) => {
    expect(() => validateAppName(name)).toThrow(/invalid app name/);
  });

  it.each(['v1', 'release-2024.1', '1a2b3c4d', 'latest_build'])('accepts image tag %s', (tag) => {
    expect(validateImageTag(tag)).toBe(tag);
  });

  it.each(['../x', 'a/b', '.hidden', '-x', 'a..b', 'a$b', 'x'.repeat(129)])('refuses image tag %j', (tag) => {
    expect(() => validateImageTag(tag)).toThrow(/invalid image tag/);
  });

  it('refuses non-strings with the type named', () => {
    expect(() => validateEnvironmentName(42)).toThrow('invalid environment a number');
    expect(() => validateApprover(null)).toThrow('invalid approver a null');
  });
});

describe('the version the release app is told', () => {
  it('drops a release- prefix, as GOV.UK tags some releases, and keeps every other tag as it is', () => {
    expect(releaseVersion('release-1234')).toBe('1234');
    expect(releaseVersion('v3231')).toBe('v3231');
    expect(releaseVersion('latest')).toBe('latest');
    expect(releaseVersion('1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b')).toBe('1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b');
    expect(releaseVersion('prerelease-1')).toBe('prerelease-1');
    expect(releaseVersion('release-')).toBe('release-');
  });
});
