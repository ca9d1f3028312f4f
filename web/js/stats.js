import { api } from './api.js';
import { chart } from './charts.js';
import { fmtCost, fmtMs, fmtPct, h, repeat, replace, showError } from './dom.js';

/** Charts of the tenant's tasks over the last days (GET /v1/stats). */
export function statsView(main) {
  const charts = h('div', { class: 'charts', 'data-testid': 'charts' });
  const note = h('p', { class: 'muted' });
  replace(main, h('h1', {}, 'Charts'), note, charts);
  let shown;
  const poll = repeat(
    10_000,
    async () => {
      const stats = await api('/v1/stats?days=14');
      if (stats === shown) return;
      shown = stats;
      const labels = stats.days.map((d) => d.day.slice(5));
      replace(
        note,
        `Tasks submitted since ${stats.since} (UTC), by the day they were submitted.`,
        stats.basis.kind === 'scan'
          ? ` Computed from the newest ${stats.basis.scanned} tasks${stats.basis.truncated ? ' (there are more)' : ''}.`
          : '',
      );
      replace(
        charts,
        chart({
          title: 'Tasks and success rate',
          labels,
          bars: { name: 'tasks', values: stats.days.map((d) => d.submitted) },
          lines: [
            {
              name: 'success rate',
              axis: 'right',
              values: stats.days.map((d) => d.successRate),
              format: fmtPct,
            },
          ],
          format: (v) => String(Math.round(v)),
          rightFormat: fmtPct,
          rightMax: 1,
        }),
        chart({
          title: 'Cost per day',
          labels,
          bars: { name: 'USD', values: stats.days.map((d) => d.costUsd) },
          format: (v) => fmtCost(v).replace(/0+$/, '').replace(/\.$/, ''),
        }),
        chart({
          title: 'Task durations',
          labels,
          lines: [
            { name: 'p50', values: stats.days.map((d) => d.p50Ms) },
            { name: 'p95', values: stats.days.map((d) => d.p95Ms) },
          ],
          format: fmtMs,
        }),
      );
    },
    (err) => showError(charts, err),
  );
  return poll;
}
