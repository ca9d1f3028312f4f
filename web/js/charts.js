import { h, s } from './dom.js';

const W = 640;
const H = 220;
const PAD = { left: 56, right: 48, top: 16, bottom: 40 };

/** A round number at or above `max`, for the top of an axis. */
function niceMax(max) {
  if (!(max > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((v) => v >= max);
}

/**
 * A small chart as inline SVG: `bars` (one series, left axis) and `lines` (each `{ name, values,
 * axis: 'left' | 'right', format }`, null values leave a gap) over `labels` (the x axis).
 */
export function chart({ title, labels, bars, lines = [], format = String, rightFormat = String, rightMax }) {
  const n = labels.length;
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const step = plotW / Math.max(1, n);
  const leftValues = [
    ...(bars?.values ?? []),
    ...lines.filter((l) => l.axis !== 'right').flatMap((l) => l.values),
  ];
  const leftMax = niceMax(Math.max(0, ...leftValues.filter((v) => v !== null)));
  const rMax =
    rightMax ??
    niceMax(
      Math.max(
        0,
        ...lines
          .filter((l) => l.axis === 'right')
          .flatMap((l) => l.values)
          .filter((v) => v !== null),
      ),
    );
  const x = (i) => PAD.left + step * i + step / 2;
  const y = (v, max) => PAD.top + plotH - (v / max) * plotH;
  const parts = [];
  for (let t = 0; t <= 4; t++) {
    const v = (leftMax * t) / 4;
    parts.push(
      s('line', { x1: PAD.left, x2: W - PAD.right, y1: y(v, leftMax), y2: y(v, leftMax), class: 'grid' }),
    );
    parts.push(
      s('text', { x: PAD.left - 6, y: y(v, leftMax) + 4, class: 'tick', 'text-anchor': 'end' }, format(v)),
    );
    if (lines.some((l) => l.axis === 'right')) {
      parts.push(
        s(
          'text',
          { x: W - PAD.right + 6, y: y((rMax * t) / 4, rMax) + 4, class: 'tick' },
          rightFormat((rMax * t) / 4),
        ),
      );
    }
  }
  const every = Math.ceil(n / 10);
  labels.forEach((label, i) => {
    if (i % every === 0)
      parts.push(
        s('text', { x: x(i), y: H - PAD.bottom + 16, class: 'tick', 'text-anchor': 'middle' }, label),
      );
  });
  if (bars) {
    bars.values.forEach((v, i) => {
      const top = y(v, leftMax);
      parts.push(
        s(
          'rect',
          { x: x(i) - step * 0.35, y: top, width: step * 0.7, height: PAD.top + plotH - top, class: 'bar' },
          s('title', {}, `${labels[i]}: ${format(v)} ${bars.name}`),
        ),
      );
    });
  }
  lines.forEach((line, k) => {
    const max = line.axis === 'right' ? rMax : leftMax;
    let d = '';
    line.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      d += `${d && line.values[i - 1] !== null && line.values[i - 1] !== undefined ? 'L' : 'M'}${x(i).toFixed(1)},${y(v, max).toFixed(1)}`;
      parts.push(
        s(
          'circle',
          { cx: x(i), cy: y(v, max), r: 3, class: `dot s${k}` },
          s('title', {}, `${labels[i]}: ${(line.format ?? format)(v)} ${line.name}`),
        ),
      );
    });
    parts.unshift(s('path', { d, class: `line s${k}` }));
  });
  const legend = [
    bars ? h('span', { class: 'key bar' }, bars.name) : null,
    lines.map((l, k) => h('span', { class: `key s${k}` }, l.name)),
  ];
  return h(
    'figure',
    { class: 'chart' },
    h('figcaption', {}, title, ' ', legend),
    s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title }, s('g', {}, parts)),
  );
}
