// The status page's script: polls /api/status (a StatusSnapshot, see src/index.ts) every second,
// keeps the last minutes of throughput and latency in memory for the chart, and redraws.
// Plain ES module for the browser: no build step, no dependencies.

const params = new URLSearchParams(location.search);
const POLL_MS = Number(params.get('poll') ?? 1000);
const HISTORY_MS = Number(params.get('minutes') ?? 5) * 60_000;
const SVG = 'http://www.w3.org/2000/svg';

/** {at, commandsPerS, p50Ms, p99Ms} per poll, oldest first. */
const history = [];
/** Each process's phase at the last poll, to list the changes this page saw. */
const lastPhase = new Map();
let lastLeader = null;
let decisionsSeen = null;
let updates = 0;

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node;
}

function fmt(value, digits = 0) {
  return value === null || value === undefined || Number.isNaN(value) ? '–' : value.toFixed(digits);
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}

function note(text) {
  const list = $('changes');
  const item = el('li', { class: 'new' }, `${clock(Date.now())} ${text}`);
  list.prepend(item);
  setTimeout(() => item.classList.remove('new'), 5000);
  while (list.children.length > 50) list.lastChild.remove();
}

function render(s) {
  $('title').textContent = s.title;
  const leader = s.leader?.name ?? null;
  $('leader').textContent = leader ?? 'none';
  $('ballot').textContent =
    s.leader?.ballot == null
      ? ''
      : `ballot round ${s.leader.ballot.round}${s.leader.ballot.proposerId == null ? '' : `, proposer ${s.leader.ballot.proposerId}`}`;
  if (updates > 0 && leader !== lastLeader) note(`leader ${lastLeader ?? 'none'} → ${leader ?? 'none'}`);
  lastLeader = leader;
  $('rate').textContent = fmt(s.commandsPerS);
  $('p50').textContent = fmt(s.p50Ms, 1);
  $('p99').textContent = fmt(s.p99Ms, 1);
  $('watermark').textContent = fmt(s.chosenWatermark);

  const body = $('processes').tBodies[0];
  body.replaceChildren(
    ...s.processes.map((p) => {
      const row = el(
        'tr',
        { 'data-process': p.name, 'data-phase': p.phase },
        el('td', {}, p.name),
        el('td', {}, p.role),
        el('td', {}, el('span', { class: `phase phase-${p.phase}` }, p.phase)),
        el('td', {}, String(p.where ?? p.pid ?? '–')),
        el('td', {}, String(p.restarts ?? '–')),
      );
      if (p.name === leader) row.classList.add('leader');
      return row;
    }),
  );
  for (const p of s.processes) {
    const before = lastPhase.get(p.name);
    if (before !== undefined && before !== p.phase) note(`${p.name}: ${before} → ${p.phase}`);
    if (before === undefined && updates > 0) note(`${p.name}: new, ${p.phase}`);
    lastPhase.set(p.name, p.phase);
  }

  const g = s.acceptorGroups;
  $('groups').replaceChildren(
    ...(g === null
      ? ['unknown']
      : [
          el(
            'div',
            {},
            `configuration version ${g.version ?? '?'}${g.servedVersion !== null && g.servedVersion !== g.version ? ` (the leader serves ${g.servedVersion})` : ''}`,
          ),
          ...g.groups.map((group) =>
            el(
              'div',
              { class: 'group' },
              `group ${group.id}: `,
              ...group.acceptors.map((a) => el('span', { class: 'chip' }, a)),
            ),
          ),
        ]),
  );
  $('matchmakers').replaceChildren(
    s.matchmakers === null
      ? 'unknown'
      : `epoch ${s.matchmakers.epoch}: ${s.matchmakers.names.join(', ') || 'none'}`,
  );

  const decisions = $('decisions');
  const fresh = decisionsSeen === null ? new Set() : decisionsSeen;
  decisions.replaceChildren(
    ...[...s.decisions].reverse().map((d) => {
      const key = `${d.at} ${d.text}`;
      return el(
        'li',
        decisionsSeen !== null && !fresh.has(key) ? { class: 'new' } : {},
        `${clock(Date.parse(d.at))} ${d.text}`,
      );
    }),
  );
  decisionsSeen = new Set(s.decisions.map((d) => `${d.at} ${d.text}`));
  $('no-decisions').hidden = s.decisions.length > 0;
  $('problems').textContent = s.problems.join('; ');
}

/** Throughput (left axis) and p50/p99 (right axis) over the last HISTORY_MS, as SVG. */
function drawChart() {
  const width = Math.max(400, $('chart').clientWidth || 800);
  const height = 220;
  const m = { left: 50, right: 50, top: 12, bottom: 24 };
  const now = Date.now();
  const points = history.filter((h) => h.at >= now - HISTORY_MS);
  const x = (at) => m.left + ((at - (now - HISTORY_MS)) / HISTORY_MS) * (width - m.left - m.right);
  const maxRate = niceMax(Math.max(1, ...points.map((p) => p.commandsPerS ?? 0)));
  const maxMs = niceMax(Math.max(1, ...points.map((p) => p.p99Ms ?? 0)));
  const yRate = (v) => height - m.bottom - (v / maxRate) * (height - m.top - m.bottom);
  const yMs = (v) => height - m.bottom - (v / maxMs) * (height - m.top - m.bottom);
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('width', width);
  svg.setAttribute('height', height);
  const add = (tag, attrs, text) => {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
  };
  for (let i = 0; i <= 4; i++) {
    const y = m.top + (i / 4) * (height - m.top - m.bottom);
    add('line', { x1: m.left, x2: width - m.right, y1: y, y2: y, stroke: '#eee' });
    add('text', { x: m.left - 6, y: y + 4, 'text-anchor': 'end' }, fmt(maxRate * (1 - i / 4)));
    add('text', { x: width - m.right + 6, y: y + 4 }, `${fmt(maxMs * (1 - i / 4), maxMs < 4 ? 1 : 0)}`);
  }
  for (let minute = 0; minute <= HISTORY_MS / 60_000; minute++) {
    const at = now - minute * 60_000;
    add(
      'text',
      { x: x(at), y: height - 6, 'text-anchor': 'middle' },
      minute === 0 ? 'now' : `-${minute} min`,
    );
  }
  const series = [
    { key: 'commandsPerS', y: yRate, color: '#0969da', label: 'commands/s (left)' },
    { key: 'p50Ms', y: yMs, color: '#1a7f37', label: 'p50 ms (right)' },
    { key: 'p99Ms', y: yMs, color: '#cf222e', label: 'p99 ms (right)' },
  ];
  series.forEach((s, i) => {
    let d = '';
    let pen = 'M';
    for (const p of points) {
      const v = p[s.key];
      if (v === null || v === undefined) {
        pen = 'M';
        continue;
      }
      d += `${pen}${x(p.at).toFixed(1)},${s.y(v).toFixed(1)}`;
      pen = 'L';
    }
    if (d !== '')
      add('path', { d, fill: 'none', stroke: s.color, 'stroke-width': 1.5, class: `series-${s.key}` });
    add('text', { x: m.left + 8 + i * 140, y: m.top + 10, fill: s.color, style: `fill:${s.color}` }, s.label);
  });
  $('chart').replaceChildren(svg);
}

function niceMax(v) {
  const step = 10 ** Math.floor(Math.log10(v));
  for (const k of [1, 2, 5, 10]) if (v <= k * step) return k * step;
  return 10 * step;
}

async function poll() {
  const started = Date.now();
  try {
    const response = await fetch('api/status', { cache: 'no-store' });
    const s = await response.json();
    if (!response.ok) throw new Error(s.error ?? `HTTP ${response.status}`);
    render(s);
    history.push({ at: s.at, commandsPerS: s.commandsPerS, p50Ms: s.p50Ms, p99Ms: s.p99Ms });
    while (history.length > 0 && history[0].at < Date.now() - HISTORY_MS) history.shift();
    updates++;
    document.body.dataset.updates = String(updates);
    $('freshness').textContent = `updated ${clock(s.at)}, every ${POLL_MS / 1000} s`;
    $('freshness').classList.remove('problems');
  } catch (err) {
    $('freshness').textContent = `cannot read the status (${err.message}); retrying`;
    $('freshness').classList.add('problems');
  }
  drawChart();
  setTimeout(poll, Math.max(0, POLL_MS - (Date.now() - started)));
}

$('chart-minutes').textContent = String(HISTORY_MS / 60_000);
poll();
