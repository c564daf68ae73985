// @ts-check
const path = require('node:path');
const ts = require('typescript');

/**
 * ts-jest compiles each file on its own (transpile only, no type checking: `npm run typecheck` does
 * that), using tsconfig.json's compiler options.
 */
function compilerOptions() {
  const file = path.join(__dirname, 'tsconfig.json');
  const { config, error } = ts.readConfigFile(file, ts.sys.readFile);
  if (error) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, '\n'));
  return { ...config.compilerOptions, isolatedModules: true };
}

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  moduleFileExtensions: ['ts', 'js', 'json'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: compilerOptions(), diagnostics: false }],
    // @octokit/rest and its helpers ship only as ES modules; jest's CommonJS runtime needs them compiled.
    '^.+\\.js$': ['ts-jest', { tsconfig: { ...compilerOptions(), allowJs: true }, diagnostics: false }],
  },
  transformIgnorePatterns: ['/node_modules/(?!(@octokit|universal-user-agent|before-after-hook|fast-content-type-parse|json-with-bigint|content-type)/)'],
  // One Temporal dev server, one moto server and one workflow bundle per jest run.
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  testTimeout: 120_000,
};
