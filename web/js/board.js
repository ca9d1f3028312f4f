import { api, withQuery } from './api.js';
import { badge, fmtCost, fmtTime, h, repeat, replace, showError } from './dom.js';

const STATUSES = ['queued', 'running', 'retrying', 'blocked', 'succeeded', 'failed', 'cancelled'];
const TERMINAL = ['succeeded', 'failed', 'cancelled'];
const PAGE_SIZE = 50;
const POLL_MS = 2000;

/** The board: tasks by status, filtered and paged, kept up to date by polling with ETags. */
export function boardView(main, { can }) {
  const filters = { status: '', role: '', provider: '', label: '' };
  /** Cursors of the pages before this one (for "Newer"), and this page's. */
  const back = [];
  let cursor;
  let page;
  let counts;

  const chips = h('div', { class: 'chips', role: 'group', 'aria-label': 'Status' });
  const rows = h('tbody', {});
  const pager = h('div', { class: 'pager' });
  const message = h('div', {});
  const input = (name, label) => {
    const el = h('input', { name, id: `filter-${name}`, placeholder: label, 'aria-label': label, size: 12 });
    el.addEventListener('change', () => {
      filters[name] = el.value.trim();
      restart();
    });
    return el;
  };

  replace(
    main,
    h('h1', {}, 'Tasks'),
    can('task:create') ? submitForm(message, () => refresh()) : null,
    h(
      'div',
      { class: 'filters' },
      chips,
      input('role', 'role'),
      input('provider', 'provider'),
      input('label', 'label'),
    ),
    message,
    h(
      'table',
      { class: 'tasks', 'data-testid': 'tasks' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Task', 'Status', 'Role', 'Provider', 'Labels', 'Prompt', 'Created', 'Cost', ''].map((c) =>
            h('th', {}, c),
          ),
        ),
      ),
      rows,
    ),
    pager,
  );

  function renderChips() {
    const total = counts ? Object.values(counts).reduce((a, b) => a + b, 0) : undefined;
    const chip = (value, label, n) => {
      const b = h(
        'button',
        {
          type: 'button',
          class: `chip${filters.status === value ? ' on' : ''}`,
          'data-chip': value || 'all',
        },
        label,
        n === undefined ? null : h('span', { class: 'n' }, String(n)),
      );
      b.addEventListener('click', () => {
        filters.status = value;
        restart();
      });
      return b;
    };
    replace(
      chips,
      chip('', 'all', total),
      STATUSES.map((st) => chip(st, st, counts?.[st])),
    );
  }

  function actions(task) {
    const out = [];
    if (can('task:cancel') && !TERMINAL.includes(task.status))
      out.push(actionButton('cancel', task, message, refresh));
    if (can('task:retry') && (task.status === 'failed' || task.status === 'cancelled'))
      out.push(actionButton('retry', task, message, refresh));
    return out;
  }

  function renderRows() {
    if (!page.items.length) {
      replace(rows, h('tr', {}, h('td', { colspan: 9, class: 'muted' }, 'No tasks.')));
    } else {
      replace(
        rows,
        page.items.map((t) =>
          h(
            'tr',
            { 'data-task-id': t.id, 'data-testid': 'task-row' },
            h('td', {}, h('a', { href: `#/tasks/${encodeURIComponent(t.id)}`, class: 'mono' }, t.id)),
            h('td', {}, badge(t.status)),
            h('td', {}, t.role),
            h('td', {}, t.provider ?? t.requestedProvider ?? '–'),
            h(
              'td',
              {},
              t.labels.map((l) => h('span', { class: 'label' }, l)),
            ),
            h('td', { class: 'prompt', title: t.prompt.slice(0, 500) }, t.prompt.slice(0, 120)),
            h('td', {}, fmtTime(t.createdAt)),
            h('td', { class: 'num' }, fmtCost(t.usage.costUsd)),
            h('td', { class: 'actions' }, actions(t)),
          ),
        ),
      );
    }
    const newer = h('button', { type: 'button', disabled: back.length === 0 }, '← Newer');
    newer.addEventListener('click', () => {
      cursor = back.pop();
      restart(false);
    });
    const older = h(
      'button',
      { type: 'button', disabled: !page.nextCursor, 'data-testid': 'older' },
      'Older →',
    );
    older.addEventListener('click', () => {
      back.push(cursor);
      cursor = page.nextCursor;
      restart(false);
    });
    replace(pager, newer, h('span', { class: 'muted' }, ` page ${back.length + 1} `), older);
  }

  async function refresh() {
    const query = { ...filters, limit: PAGE_SIZE, cursor };
    const [list, stats] = await Promise.all([
      api(withQuery('/v1/tasks', query)),
      api('/v1/stats?days=0').catch(() => undefined),
    ]);
    if (list !== page) {
      page = list;
      renderRows();
      // when the board first showed tasks, from the start of the navigation (read by the load test)
      if (!performance.getEntriesByName('autodev:board-rendered').length)
        performance.mark('autodev:board-rendered');
    }
    if (stats && stats.queue.counts !== counts) {
      counts = stats.queue.counts;
      renderChips();
    }
  }

  let poll;
  function restart(resetPages = true) {
    if (resetPages) {
      back.length = 0;
      cursor = undefined;
    }
    poll?.stop();
    renderChips();
    poll = repeat(POLL_MS, refresh, (err) => showError(message, err));
  }
  restart();
  return { stop: () => poll?.stop() };
}

/** Cancel or retry: POST, then show the answer. */
export function actionButton(action, task, message, after) {
  const b = h('button', { type: 'button', class: `act ${action}`, 'data-action': action }, action);
  b.addEventListener('click', async (e) => {
    e.preventDefault();
    b.disabled = true;
    try {
      await api(`/v1/tasks/${encodeURIComponent(task.id)}/${action}`, { method: 'POST' });
      replace(message);
    } catch (err) {
      showError(message, err);
    }
    await after().catch(() => {});
  });
  return b;
}

function submitForm(message, after) {
  const field = (label, el) => h('label', {}, h('span', {}, label), el);
  const repo = h('input', { name: 'repo', required: true, placeholder: 'https://github.com/org/repo.git' });
  const prompt = h('textarea', { name: 'prompt', required: true, rows: 3 });
  const role = h('input', { name: 'role', placeholder: 'backend' });
  const provider = h('input', { name: 'provider', placeholder: 'auto' });
  const labels = h('input', { name: 'labels', placeholder: 'comma, separated' });
  const priority = h(
    'select',
    { name: 'priority' },
    ['normal', 'high', 'low'].map((p) => h('option', { value: p }, p)),
  );
  const form = h(
    'form',
    { class: 'card submit', id: 'submit-form' },
    field('Repository', repo),
    field('Prompt', prompt),
    h('div', { class: 'row' }, field('Role', role), field('Provider', provider)),
    h('div', { class: 'row' }, field('Labels', labels), field('Priority', priority)),
    h('button', { type: 'submit' }, 'Submit task'),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { repo: repo.value.trim(), prompt: prompt.value, priority: priority.value };
    if (role.value.trim()) body.role = role.value.trim();
    if (provider.value.trim()) body.provider = provider.value.trim();
    const ls = labels.value
      .split(',')
      .map((l) => l.trim())
      .filter(Boolean);
    if (ls.length) body.labels = ls;
    try {
      const task = await api('/v1/tasks', { method: 'POST', body });
      prompt.value = '';
      replace(
        message,
        h('p', { class: 'ok' }, 'Submitted ', h('a', { href: `#/tasks/${task.id}` }, task.id), '.'),
      );
      await after();
    } catch (err) {
      showError(message, err);
    }
  });
  return h('details', { class: 'submit' }, h('summary', {}, 'Submit a task'), form);
}
