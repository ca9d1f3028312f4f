import { api } from './api.js';
import { fmtTime, h, repeat, replace, showError } from './dom.js';

/** The tenant's recurring tasks (GET /v1/schedules). */
export function schedulesView(main) {
  const list = h('div', { 'data-testid': 'schedules' });
  replace(main, h('h1', {}, 'Schedules'), list);
  let shown;
  return repeat(
    10_000,
    async () => {
      const data = await api('/v1/schedules');
      if (data === shown) return;
      shown = data;
      if (!data.items.length) return replace(list, h('p', { class: 'muted' }, 'No schedules.'));
      replace(
        list,
        h(
          'table',
          {},
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['Name', 'Schedule', 'Time zone', 'Enabled', 'Repository', 'Prompt', 'Created'].map((c) =>
                h('th', {}, c),
              ),
            ),
          ),
          h(
            'tbody',
            {},
            data.items.map((sc) =>
              h(
                'tr',
                {},
                h('td', {}, sc.name),
                h('td', { class: 'mono' }, sc.schedule),
                h('td', {}, sc.timezone),
                h('td', {}, sc.enabled ? 'yes' : 'no'),
                h('td', {}, String(sc.task.repo ?? '')),
                h('td', { class: 'prompt' }, String(sc.task.prompt ?? '').slice(0, 120)),
                h('td', {}, fmtTime(sc.createdAt)),
              ),
            ),
          ),
        ),
      );
    },
    (err) => showError(list, err),
  );
}
