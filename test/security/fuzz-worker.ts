import { Agent } from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';
import { type FuzzSeed, fuzzRoute, type Route } from './fuzz-requests.js';

/**
 * The fuzz test's client, in a worker thread of the test's process: it generates and sends the
 * requests while the main thread runs the server, so the two share the machine's cores.
 */
const { base, seed } = workerData as { base: string; seed: FuzzSeed };
const agent = new Agent({ keepAlive: true, maxSockets: 16 });

parentPort?.on('message', (job: { route: Route; total: number; batch: number }) => {
  fuzzRoute({ base: new URL(base), agent, seed, ...job }).then(
    (sent) => parentPort?.postMessage({ ok: true, sent }),
    (err: unknown) =>
      parentPort?.postMessage({ ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
});
