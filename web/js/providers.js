import { api } from './api.js';
import { fmtAge, fmtCost, fmtInt, fmtMs, fmtPct, h, repeat, replace, showError } from './dom.js';

const table = (head, rows) =>
  h(
    'table',
    {},
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        head.map((c) => h('th', {}, c)),
      ),
    ),
    h('tbody', {}, rows),
  );

const byKey = (record) =>
  Object.keys(record).length
    ? h(
        'ul',
        { class: 'inline' },
        Object.entries(record).map(([k, n]) => h('li', {}, `${k}: ${n}`)),
      )
    : h('span', { class: 'muted' }, 'none');

/** Providers (breaker, success, latency and cost per role) and the queue (GET /v1/providers, /v1/stats). */
export function providersView(main) {
  const providers = h('div', { 'data-testid': 'providers' });
  const perRole = h('div', {});
  const queue = h('div', { 'data-testid': 'queue' });
  replace(
    main,
    h('h1', {}, 'Providers'),
    providers,
    h('h2', {}, 'By provider and role (last 14 days)'),
    perRole,
    h('h1', {}, 'Queue'),
    queue,
  );
  let shown = {};
  return repeat(
    5000,
    async () => {
      const [list, stats] = await Promise.all([api('/v1/providers'), api('/v1/stats?days=14')]);
      if (list !== shown.list) {
        replace(
          providers,
          table(
            ['Provider', 'Installed', 'Credentials', 'Breaker', 'Success (recent)', 'Model'],
            list.items.map((p) =>
              h(
                'tr',
                { 'data-provider': p.name },
                h('td', {}, p.name),
                h('td', {}, p.path ? (p.version ?? 'yes') : 'no'),
                h('td', {}, p.credentials),
                h('td', {}, h('span', { class: `badge br-${p.breaker}` }, p.breaker)),
                h(
                  'td',
                  {},
                  p.successRate === undefined ? '–' : `${fmtPct(p.successRate)} of ${p.recentAttempts}`,
                ),
                h('td', { class: 'mono' }, p.model ?? '–'),
              ),
            ),
          ),
        );
      }
      if (stats !== shown.stats) {
        replace(
          perRole,
          stats.providers.length
            ? table(
                ['Provider', 'Role', 'Attempts', 'Success', 'Mean time', 'Cost'],
                stats.providers.map((p) =>
                  h(
                    'tr',
                    {},
                    h('td', {}, p.provider),
                    h('td', {}, p.role),
                    h('td', { class: 'num' }, fmtInt(p.attempts)),
                    h('td', { class: 'num' }, fmtPct(p.successRate)),
                    h('td', { class: 'num' }, fmtMs(p.avgMs)),
                    h('td', { class: 'num' }, fmtCost(p.costUsd)),
                  ),
                ),
              )
            : h('p', { class: 'muted' }, 'No attempts in these days.'),
        );
        const q = stats.queue;
        replace(
          queue,
          h(
            'dl',
            { class: 'facts' },
            h('dt', {}, 'Queued'),
            h('dd', { 'data-testid': 'queue-depth' }, fmtInt(q.counts.queued)),
            h('dt', {}, 'Oldest queued'),
            h('dd', {}, q.oldestQueuedAt ? `${fmtAge(q.oldestQueuedAt)} ago` : '–'),
            h('dt', {}, 'Retrying / blocked'),
            h('dd', {}, `${fmtInt(q.counts.retrying)} / ${fmtInt(q.counts.blocked)}`),
            h('dt', {}, 'Running'),
            h('dd', {}, fmtInt(q.counts.running)),
            h('dt', {}, 'Running by role'),
            h('dd', {}, byKey(q.runningByRole)),
            h('dt', {}, 'Running by provider'),
            h('dd', {}, byKey(q.runningByProvider)),
            h('dt', {}, 'Tenant'),
            h('dd', {}, stats.tenant),
          ),
        );
      }
      shown = { list, stats };
    },
    (err) => showError(providers, err),
  );
}
