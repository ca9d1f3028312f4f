// The tests that run the real provider CLIs (npm run test:real-cli, after npm run real-clis:install):
// compiled like the others, one at a time (each runs the platform and a CLI that takes seconds to start).
import base from './jest.config.js';

/** @type {import('jest').Config} */
export default {
  ...base,
  roots: ['<rootDir>/test/real-cli'],
  testPathIgnorePatterns: ['/node_modules/'],
  testTimeout: 120_000,
  maxWorkers: 1,
  maxConcurrency: 1,
};
