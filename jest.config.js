// Jest runs the compiled tests in dist/ as native ES modules (NODE_OPTIONS=--experimental-vm-modules,
// set by `npm test`): `tsc -p tsconfig.json` compiles sources and tests together, so nothing is
// transformed at run time. Snapshots live beside the TypeScript sources, not in dist/.
/** @type {import('jest').Config} */
export default {
  rootDir: 'dist',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.js'],
  // the real provider CLIs need an install first and run for minutes: npm run test:real-cli
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/real-cli/'],
  testEnvironment: 'node',
  transform: {},
  testTimeout: 60_000,
  snapshotResolver: '<rootDir>/../jest.snapshot-resolver.cjs',
  // the driver and provider suites run their fake CLIs concurrently, as they did before
  maxConcurrency: 8,
  injectGlobals: false,
};
