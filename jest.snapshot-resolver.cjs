// Maps a compiled test (dist/test/infra/stack.test.js) to the snapshot beside its TypeScript source
// (test/infra/__snapshots__/stack.test.ts.snap), and back.
const path = require('node:path');

const root = path.resolve(__dirname);
const dist = path.join(root, 'dist');

module.exports = {
  resolveSnapshotPath: (testPath, ext) => {
    const source = path.join(root, path.relative(dist, testPath)).replace(/\.js$/, '.ts');
    return path.join(path.dirname(source), '__snapshots__', path.basename(source) + ext);
  },
  resolveTestPath: (snapshotPath, ext) => {
    const source = path.join(path.dirname(path.dirname(snapshotPath)), path.basename(snapshotPath, ext));
    return path.join(dist, path.relative(root, source)).replace(/\.ts$/, '.js');
  },
  testPathForConsistencyCheck: path.join(dist, 'test', 'infra', 'example.test.js'),
};
