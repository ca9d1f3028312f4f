/**
 * `node dist/test/bench/gateway.js`: what the model gateway adds to a streamed model call. The same
 * scripted Anthropic upstream (an SSE answer of six events) is called straight and through a
 * gateway session, one call at a time (latency: p50, p99) and 16 at a time (calls/s).
 * BENCH_CALLS sets the calls per measure (default 2000).
 */
import { ModelGateway } from '../../lib/gateway/index.js';
import { callModel } from '../gateway/clients.js';
import { startScriptedUpstream } from '../support/upstreams.js';

const CALLS = Number(process.env.BENCH_CALLS ?? 2000);
const CONCURRENCY = 16;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function latencies(baseUrl: string, key: string): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const t = performance.now();
    const res = await callModel({ protocol: 'anthropic', baseUrl, key, stream: true });
    if (res.status !== 200) throw new Error(`status ${res.status}`);
    out.push(performance.now() - t);
  }
  return out.sort((a, b) => a - b);
}

async function throughput(baseUrl: string, key: string): Promise<number> {
  let next = 0;
  const t = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < CALLS) await callModel({ protocol: 'anthropic', baseUrl, key, stream: true });
    }),
  );
  return CALLS / ((performance.now() - t) / 1000);
}

const upstream = await startScriptedUpstream({
  protocol: 'anthropic',
  script: [{ kind: 'answer', text: 'Done.', usage: { input: 2000, output: 300, cacheRead: 5000 } }],
});
const gateway = await ModelGateway.start();
const session = gateway.openSession({
  attemptId: 'bench',
  provider: 'anthropic',
  upstream: upstream.baseUrl,
  realKey: 'k',
});
// warm both paths (connections, JIT)
await latencies(upstream.baseUrl, 'k');
await latencies(session.baseUrl, session.credential);
const direct = await latencies(upstream.baseUrl, 'k');
const via = await latencies(session.baseUrl, session.credential);
const directRate = await throughput(upstream.baseUrl, 'k');
const viaRate = await throughput(session.baseUrl, session.credential);
const f = (n: number) => n.toFixed(2);
const rows = [
  ...[50, 99].map((p) => {
    const a = percentile(direct, p);
    const b = percentile(via, p);
    return [`streamed call latency p${p}, ms`, f(a), f(b), f(b - a)];
  }),
  [`calls/s, ${CONCURRENCY} at a time`, directRate.toFixed(0), viaRate.toFixed(0), ''],
];
const header = ['measure', 'straight', 'via gateway', 'added'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
console.log(`\nModel gateway bench: ${CALLS} calls per measure, client, gateway and upstream in one process`);
console.log(line(header));
console.log(line(widths.map((w) => '-'.repeat(w))));
for (const r of rows) console.log(line(r));
console.log(`ledger: ${session.calls.length} calls metered, $${session.spentUsd.toFixed(2)}`);
await gateway.close();
await upstream.close();
