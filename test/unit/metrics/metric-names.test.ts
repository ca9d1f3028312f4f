import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { isKnownMetric, METRICS, PROCESS_METRICS_PREFIX } from '../../../lib/core/metric-names.js';
import { DEFAULT_BREAKER, recordProviderResult } from '../../../lib/core/provider-health.js';
import { PlatformMetrics } from '../../../lib/local/metrics.js';
import { SqliteTaskStore } from '../../../lib/local/sqlite-store.js';
import { ROOT } from '../../support/local-platform.js';
import { makeTask } from '../../support/tasks.js';

const list = Object.values(METRICS);
const prometheusNames = list.filter((m) => (m.where as readonly string[]).includes('prometheus'));

/** The metric families of a Prometheus text exposition: name → type. */
function families(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1] as string, m[2] as string);
  return out;
}

describe('one list of metric names (lib/core/metric-names)', () => {
  const store = new SqliteTaskStore(':memory:');
  afterAll(() => store.close());

  it('names each metric once, in Prometheus style, with the unit in the name where it has one', () => {
    const names = list.map((m) => m.name);
    expect(new Set(names).size).toBe(names.length);
    for (const m of list) {
      expect([m.name, /^autodev_[a-z0-9_]+$/.test(m.name)]).toEqual([m.name, true]);
      if (m.kind === 'counter') expect([m.name, m.name.endsWith('_total')]).toEqual([m.name, true]);
      if (m.unit === 'Seconds') expect([m.name, m.name.endsWith('_seconds')]).toEqual([m.name, true]);
      expect(m.name.startsWith(PROCESS_METRICS_PREFIX)).toBe(false);
    }
  });

  it('the local platform serves every Prometheus metric of the list, and no other', async () => {
    // Arrange: a provider with a recorded result, a waiting task, an attempt and a task that ended
    await recordProviderResult(store, 'claude', true, undefined, Date.now());
    await store.create(makeTask());
    const metrics = new PlatformMetrics(
      store,
      () => 1,
      { states: () => store.listProviderStates(), breaker: DEFAULT_BREAKER },
      () => store.listWaiting(),
    );
    metrics.attemptEnded(
      'claude',
      { ok: true, usage: { inputTokens: 10, outputTokens: 5, costUsd: 0.01 }, changedFiles: [] },
      1500,
    );
    metrics.taskRetrying();
    metrics.agentStarted(120);
    metrics.taskEnded(makeTask({ status: 'succeeded', durationMs: 4000 }));
    // Act
    const rendered = families(await metrics.registry.metrics());
    // Assert
    const ours = [...rendered.keys()].filter((n) => !n.startsWith(PROCESS_METRICS_PREFIX));
    expect(ours.sort()).toEqual(prometheusNames.map((m) => m.name).sort());
    for (const m of prometheusNames) expect([m.name, rendered.get(m.name)]).toEqual([m.name, m.kind]);
    expect([...rendered.keys()].every(isKnownMetric)).toBe(true);
    expect(rendered.size).toBeGreaterThan(ours.length); // the Node.js process metrics too
  });

  it('the Grafana dashboard (docs/grafana-dashboard.json) queries only Prometheus metrics of the list', () => {
    const dashboard = JSON.parse(readFileSync(join(ROOT, 'docs/grafana-dashboard.json'), 'utf8')) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    const queried = new Set<string>();
    for (const p of dashboard.panels)
      for (const t of p.targets)
        for (const m of t.expr.matchAll(/\b(autodev_[a-z0-9_]+)\b/g)) {
          const series = m[1] as string;
          const histogram = series.match(/^(.*)_(bucket|sum|count)$/)?.[1];
          queried.add(histogram && prometheusNames.some((x) => x.name === histogram) ? histogram : series);
        }
    expect([...queried].filter((n) => !prometheusNames.some((m) => m.name === n))).toEqual([]);
    // what the dashboard is for: tasks by status, success rate, queue, durations, cost, tokens, breakers
    for (const key of [
      'tasks',
      'tasksFinished',
      'queueDepth',
      'queueAge',
      'attemptDuration',
      'cost',
      'tokens',
      'breakerState',
    ] as const)
      expect([key, queried.has(METRICS[key].name)]).toEqual([key, true]);
  });

  it('no Lambda or AWS adapter names a metric itself: every EMF metric goes through lib/aws/emf.ts', () => {
    const files = [
      ...readdirSync(join(ROOT, 'lambdas')).map((f) => join(ROOT, 'lambdas', f)),
      ...readdirSync(join(ROOT, 'lib/aws')).map((f) => join(ROOT, 'lib/aws', f)),
      join(ROOT, 'containers/worker/entry.ts'),
    ].filter((f) => f.endsWith('.ts') && !f.endsWith('/emf.ts'));
    const naming = files.filter((f) => /\.addMetric\(/.test(readFileSync(f, 'utf8')));
    expect(naming).toEqual([]);
  });
});
