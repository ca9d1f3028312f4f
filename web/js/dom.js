// Elements built from data: text always goes in as text nodes (never as HTML), so what a task's
// prompt or log says is shown, never run.

const SVG_NS = 'http://www.w3.org/2000/svg';

function fill(el, props, children) {
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.setAttribute('class', value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** An HTML element: `h('td', { class: 'x' }, 'text', otherElement)`. */
export const h = (tag, props, ...children) => fill(document.createElement(tag), props, children);

/** An SVG element. */
export const s = (tag, props, ...children) => fill(document.createElementNS(SVG_NS, tag), props, children);

/** A link only for http(s) addresses; anything else (javascript:, data:) is shown as text. */
export function safeLink(url, text = url) {
  try {
    const u = new URL(url);
    if (u.protocol === 'https:' || u.protocol === 'http:') {
      return h('a', { href: u.href, target: '_blank', rel: 'noopener noreferrer' }, text);
    }
  } catch {
    // not a URL
  }
  return h('span', {}, text);
}

export function replace(el, ...children) {
  el.replaceChildren();
  return fill(el, {}, children);
}

export const fmtTime = (iso) => (iso ? new Date(iso).toLocaleString() : '–');
export const fmtCost = (usd) => `$${(usd ?? 0).toFixed(4)}`;
export const fmtInt = (n) => (n ?? 0).toLocaleString('en-US');
export const fmtPct = (r) => (r === null || r === undefined ? '–' : `${Math.round(r * 100)}%`);

export function fmtMs(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  if (ms < 172_800_000) return `${(ms / 3_600_000).toFixed(1)} h`;
  return `${(ms / 86_400_000).toFixed(1)} d`;
}

export function fmtAge(iso) {
  if (!iso) return '–';
  return fmtMs(Date.now() - Date.parse(iso));
}

export const badge = (status) => h('span', { class: `badge st-${status}`, 'data-status': status }, status);

/**
 * Runs `fn` now and then every `ms` after each run ends (never two at once), until stopped; an
 * error is handed to `onError` and the polling goes on.
 */
export function repeat(ms, fn, onError = () => {}) {
  let stopped = false;
  let timer;
  const tick = async () => {
    try {
      await fn();
    } catch (err) {
      if (!stopped) onError(err);
    }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/** A short message in `el` for an error of a call (nothing for a refused token: sign-in shows it). */
export function showError(el, err) {
  if (err?.name === 'AbortError' || err?.constructor?.name === 'AuthError') return;
  replace(el, h('p', { class: 'error', role: 'alert' }, err?.message ?? String(err)));
}
