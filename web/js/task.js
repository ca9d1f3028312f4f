import { api, followLogs } from './api.js';
import { actionButton } from './board.js';
import { badge, fmtCost, fmtInt, fmtMs, fmtTime, h, repeat, replace, safeLink, showError } from './dom.js';

const TERMINAL = ['succeeded', 'failed', 'cancelled'];

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

const facts = (pairs) =>
  h(
    'dl',
    { class: 'facts' },
    pairs
      .filter(([, v]) => v !== undefined && v !== null && v !== '')
      .map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
  );

function usage(u) {
  if (!u) return '–';
  const cached = u.cachedInputTokens ? ` (${fmtInt(u.cachedInputTokens)} cached)` : '';
  return `${fmtInt(u.inputTokens)} in${cached} / ${fmtInt(u.outputTokens)} out · ${fmtCost(u.costUsd)}`;
}

function ledger(calls) {
  if (!calls?.length) return null;
  return h(
    'details',
    { class: 'ledger' },
    h('summary', {}, `${calls.length} model call(s)`),
    table(
      ['At', 'Provider', 'Model', 'In', 'Cached', 'Out', 'Cost', 'Status', 'Time'],
      calls.map((c) =>
        h(
          'tr',
          {},
          h('td', {}, fmtTime(c.at)),
          h('td', {}, c.provider),
          h('td', { class: 'mono' }, c.model),
          h('td', { class: 'num' }, fmtInt(c.inputTokens)),
          h('td', { class: 'num' }, fmtInt(c.cachedInputTokens)),
          h('td', { class: 'num' }, fmtInt(c.outputTokens)),
          h('td', { class: 'num' }, fmtCost(c.costUsd)),
          h('td', { class: 'num' }, String(c.status)),
          h('td', { class: 'num' }, fmtMs(c.durationMs)),
        ),
      ),
    ),
  );
}

function attempts(task) {
  if (!task.attempts.length) return h('p', { class: 'muted' }, 'No attempt yet.');
  return table(
    ['#', 'Provider', 'Started', 'Ended', 'Outcome', 'Error', 'Usage', 'Model calls'],
    task.attempts.map((a) =>
      h(
        'tr',
        { 'data-attempt': a.number },
        h('td', {}, String(a.number)),
        // provider "auto": why routing chose it, on hover
        h('td', { title: a.routing ? `routed: ${a.routing.reason}` : undefined }, a.provider),
        h('td', {}, fmtTime(a.startedAt)),
        h('td', {}, fmtTime(a.endedAt)),
        h('td', {}, badge(a.outcome)),
        h('td', {}, a.errorClass ? `${a.errorClass}: ${a.message ?? ''}` : (a.message ?? '')),
        h('td', {}, usage(a.usage)),
        h('td', {}, ledger(a.calls) ?? '–'),
      ),
    ),
  );
}

function gates(task) {
  if (!task.gates?.length) return h('p', { class: 'muted' }, 'No quality gates ran.');
  return table(
    ['Gate', 'Result', 'Exit code', 'Time', 'Output'],
    task.gates.map((g) =>
      h(
        'tr',
        {},
        h('td', {}, g.name),
        h('td', {}, badge(g.ok ? 'succeeded' : 'failed')),
        h('td', {}, g.exitCode === null ? (g.timedOut ? 'timed out' : 'killed') : String(g.exitCode)),
        h('td', {}, fmtMs(g.durationMs)),
        h('td', {}, g.output ? h('pre', { class: 'out' }, g.output) : ''),
      ),
    ),
  );
}

function review(task) {
  const r = task.review;
  if (!r) return h('p', { class: 'muted' }, 'No review.');
  return h(
    'div',
    {},
    h('p', {}, badge(r.verdict), ` by ${r.provider}: `, r.summary),
    r.comments.length
      ? h(
          'ul',
          {},
          r.comments.map((c) => h('li', {}, h('code', {}, `${c.path}:${c.line}`), ' ', c.body)),
        )
      : null,
  );
}

/** A task: what was asked, how it went, and its log as it is written. */
export function taskView(main, { can }, id) {
  const head = h('div', { class: 'task-head' });
  const body = h('div', {});
  const message = h('div', {});
  const log = h('pre', { class: 'log', id: 'log', 'data-testid': 'log', 'aria-live': 'polite' });
  const logState = h('span', { class: 'muted', 'data-testid': 'log-state' }, 'connecting…');
  const path = `/v1/tasks/${encodeURIComponent(id)}`;
  let task;

  replace(
    main,
    h('p', {}, h('a', { href: '#/' }, '← Board')),
    head,
    message,
    body,
    h('section', {}, h('h2', {}, 'Log ', logState), log),
  );

  function render() {
    const act = [];
    if (can('task:cancel') && !TERMINAL.includes(task.status))
      act.push(actionButton('cancel', task, message, load));
    if (can('task:retry') && (task.status === 'failed' || task.status === 'cancelled'))
      act.push(actionButton('retry', task, message, load));
    replace(
      head,
      h(
        'h1',
        {},
        'Task ',
        h('span', { class: 'mono' }, task.id),
        ' ',
        h('span', { 'data-testid': 'task-status' }, badge(task.status)),
      ),
      h('div', { class: 'actions' }, act),
    );
    replace(
      body,
      h(
        'section',
        {},
        h('h2', {}, 'Prompt'),
        h('pre', { class: 'prompt-text', 'data-testid': 'prompt' }, task.prompt),
      ),
      h(
        'section',
        {},
        h('h2', {}, 'Details'),
        facts([
          ['Repository', task.repo],
          ['Base branch', task.baseBranch],
          ['Role', task.role],
          ['Provider', task.provider ?? task.requestedProvider],
          ['Priority', task.priority],
          ['Labels', task.labels.join(', ')],
          ['Created', `${fmtTime(task.createdAt)} by ${task.createdBy ?? '?'}`],
          ['Updated', fmtTime(task.updatedAt)],
          ['Duration', task.durationMs === undefined ? undefined : fmtMs(task.durationMs)],
          ['Branch', task.branch],
          ['Commit', task.commit],
          ['Pull request', task.pullRequest ? safeLink(task.pullRequest.url) : undefined],
          ['Tokens and cost', usage(task.usage)],
          ['Summary', task.summary],
          ['Error', task.error ? `${task.error.code}: ${task.error.message}` : undefined],
        ]),
      ),
      h('section', {}, h('h2', {}, 'Attempts'), attempts(task)),
      h('section', {}, h('h2', {}, 'Quality gates'), gates(task)),
      h('section', {}, h('h2', {}, 'Review'), review(task)),
    );
  }

  const abort = new AbortController();
  let lastSeq = 0;
  let following = false;
  /** Streams the log from the last line shown; again when a retried task runs after its log ended. */
  function follow() {
    following = true;
    followLogs(
      id,
      {
        line: (l) => {
          lastSeq = l.seq;
          log.append(`${l.at} ${l.text}\n`);
          log.scrollTop = log.scrollHeight;
        },
        status: (s) => {
          replace(logState, `live · ${s}`);
          if (task && s !== task.status) load().catch(() => {});
        },
        end: (s) => replace(logState, `ended · ${s}`),
        error: (err) => replace(logState, `reconnecting (${err.message})`),
      },
      abort.signal,
      lastSeq,
    ).finally(() => {
      following = false;
    });
  }

  async function load() {
    const next = await api(path);
    if (next !== task) {
      task = next;
      render();
    }
    if (!following && !TERMINAL.includes(task.status) && !abort.signal.aborted) follow();
  }

  const poll = repeat(2000, load, (err) => showError(message, err));
  follow();
  return {
    stop() {
      poll?.stop();
      abort.abort();
    },
  };
}
