// The fleet page (/): one row per bot, kept current from /api/events and /stream/stats,
// filtered by name and state, with actions on the selected bots.

import {
  $, $$, h, enc, cssEscape, api, notify, confirmAction, fmtBytes, fmtPercent, uptime, memoryLimit, stateLight,
  STATE_LABEL, subscribeEvents, subscribeStats, startPage,
} from './common.js';

/** What each column's cell shows; the server's table header says which columns, in order. */
const CELLS = {
  state: {
    class: 'state-cell',
    fill: (td, bot) => {
      td.replaceChildren(stateLight(bot.state), h('span', { class: 'state', text: STATE_LABEL[bot.state] || bot.state }));
      if (stateDrift(bot)) {
        td.append(h('span', {
          class: 'state-drift',
          title: `Wanted ${bot.desired_state}, but Docker says ${bot.state}`,
          text: `≠ wanted ${bot.desired_state}`,
        }));
      }
    },
  },
  bot: {
    class: 'bot-cell',
    fill: (td, bot) => {
      td.replaceChildren(h('a', { href: `/bots/${enc(bot.id)}`, text: bot.name || bot.id }));
      if (bot.name && bot.name !== bot.id) td.append(h('div', { class: 'muted small', text: bot.id }));
    },
  },
  health: {
    class: 'health',
    fill: (td, bot) => {
      td.textContent = bot.health && bot.health !== 'none' ? bot.health : '—';
      td.dataset.health = bot.health || 'none';
    },
  },
  uptime: { class: 'uptime num', fill: (td, bot) => { td.textContent = uptime(bot); } },
  restarts: { class: 'restarts num', fill: (td, bot) => { td.textContent = String(bot.restart_count ?? 0); } },
  // CPU and memory come from the stats stream (fillStats).
  cpu: { class: 'cpu' },
  mem: { class: 'mem' },
  ports: {
    class: 'ports',
    fill: (td, bot) => {
      const ports = (bot.ports || []).map((p) => `${p.host_ip || '127.0.0.1'}:${p.host ?? '?'}→${p.container}/${p.protocol || 'tcp'}`);
      td.textContent = ports.length ? ports.join(', ') : '—';
    },
  },
  image: {
    class: 'image',
    fill: (td, bot) => {
      td.replaceChildren(h('code', { text: bot.image }));
      // The tag names another image now: an upgrade would pick it up.
      if (bot.image_drift) {
        td.append(' ', h('span', { class: 'drift', text: 'drift', title: 'The tag now names another image than runs: upgrade to pick it up' }));
      }
    },
  },
};

/**
 * The server's `state_drift`, recomputed here: live state events carry the observed state
 * only. Wanted stopped but up, or wanted running but stopped or missing.
 */
function stateDrift(bot) {
  if (bot.desired_state === 'stopped') return bot.state === 'running' || bot.state === 'crash_loop';
  return bot.state === 'stopped' || bot.state === 'missing';
}

/** Lifecycle actions the bulk buttons (`data-bulk`) run on each selected bot. */
const BULK = {
  start: (id) => api('POST', `/api/bots/${enc(id)}/start`),
  stop: (id) => api('POST', `/api/bots/${enc(id)}/stop`),
  restart: (id) => api('POST', `/api/bots/${enc(id)}/restart`),
  delete: (id) => api('DELETE', `/api/bots/${enc(id)}`),
};

/** Asks before the bulk actions that cannot be undone; resolves to whether to go on. */
const CONFIRM = {
  delete: (ids) => confirmAction(
    `Delete ${ids.length} bot${ids.length === 1 ? '' : 's'}?`,
    `${ids.join(', ')}: their containers, secrets and workspaces are removed. This cannot be undone.`,
    `Delete ${ids.length} bot${ids.length === 1 ? '' : 's'}`),
};

function fleetPage() {
  const tbody = $('#fleet-rows');
  const columns = $$('#fleet thead th[data-col]').map((th) => th.dataset.col).filter((c) => CELLS[c]);
  const bots = new Map();
  const stats = new Map();
  const selected = new Set();
  const filterName = $('#filter-name');
  const filterState = $('#filter-state');
  let loaded = false;

  const cell = (tr, col) => $(`:scope > td[data-col="${col}"]`, tr);

  function row(bot) {
    let tr = $(`tr[data-id="${cssEscape(bot.id)}"]`, tbody);
    if (!tr) {
      const box = h('input', {
        type: 'checkbox', class: 'select', 'aria-label': `Select ${bot.id}`,
        onchange: (e) => { if (e.target.checked) selected.add(bot.id); else selected.delete(bot.id); updateSelection(); },
      });
      tr = h('tr', { 'data-id': bot.id },
        h('td', { 'data-col': 'select' }, box),
        columns.map((col) => h('td', { class: CELLS[col].class, 'data-col': col })));
    }
    return tr;
  }

  function fill(tr, bot) {
    tr.dataset.state = bot.state;
    for (const col of columns) if (CELLS[col].fill) CELLS[col].fill(cell(tr, col), bot);
    fillStats(tr, bot);
  }

  function fillStats(tr, bot) {
    const cpu = cell(tr, 'cpu');
    const mem = cell(tr, 'mem');
    const sample = bot.state === 'running' ? stats.get(bot.id) : null;
    if (!sample) {
      if (cpu) cpu.textContent = '—';
      if (mem) mem.textContent = '—';
      return;
    }
    const cpuMax = bot.limits && bot.limits.cpus ? bot.limits.cpus * 100 : 100;
    if (cpu) {
      cpu.replaceChildren(
        h('meter', { min: 0, max: cpuMax, value: Math.min(sample.cpu_percent, cpuMax), 'aria-hidden': 'true' }),
        h('span', { text: ` ${fmtPercent(sample.cpu_percent)}${bot.limits && bot.limits.cpus ? ` of ${bot.limits.cpus * 100} %` : ''}` }));
    }
    const limit = memoryLimit(bot, sample);
    if (mem) {
      mem.replaceChildren(
        h('meter', { min: 0, max: limit || 1, value: sample.memory_bytes, high: (limit || 1) * 0.8, 'aria-hidden': 'true' }),
        h('span', { text: ` ${fmtBytes(sample.memory_bytes)} / ${fmtBytes(limit)}` }));
    }
  }

  function matches(bot) {
    const q = filterName.value.trim().toLowerCase();
    const st = filterState.value;
    if (st && bot.state !== st) return false;
    if (q && !bot.id.toLowerCase().includes(q) && !(bot.name || '').toLowerCase().includes(q)) return false;
    return true;
  }

  function render() {
    const ids = Array.from(bots.keys()).sort();
    let shown = 0;
    for (const id of ids) {
      const bot = bots.get(id);
      const tr = row(bot);
      fill(tr, bot);
      tr.hidden = !matches(bot);
      if (!tr.hidden) shown += 1;
      tbody.append(tr); // keeps rows sorted (append moves an existing row)
    }
    for (const tr of $$('tr[data-id]', tbody)) {
      if (!bots.has(tr.dataset.id)) tr.remove();
    }
    for (const id of Array.from(selected)) if (!bots.has(id)) selected.delete(id);
    $('#fleet-loading').hidden = loaded;
    $('#fleet-empty').hidden = !loaded || bots.size > 0;
    $('#fleet-none-shown').hidden = bots.size === 0 || shown > 0;
    updateSelection();
  }

  function updateSelection() {
    const visibleSelected = Array.from(selected).filter((id) => {
      const tr = $(`tr[data-id="${cssEscape(id)}"]`, tbody);
      return tr && !tr.hidden;
    });
    $('#selection-count').textContent = `${visibleSelected.length} selected`;
    for (const b of $$('[data-bulk]')) b.disabled = visibleSelected.length === 0;
    for (const box of $$('input.select', tbody)) box.checked = selected.has(box.closest('tr').dataset.id);
    const visible = $$('tr[data-id]', tbody).filter((tr) => !tr.hidden);
    const all = $('#select-all');
    all.checked = visible.length > 0 && visible.every((tr) => selected.has(tr.dataset.id));
    all.indeterminate = !all.checked && visible.some((tr) => selected.has(tr.dataset.id));
    return visibleSelected;
  }

  async function load() {
    try {
      const [list, st] = await Promise.all([api('GET', '/api/bots'), api('GET', '/api/stats')]);
      bots.clear();
      for (const b of list.bots) bots.set(b.id, b);
      stats.clear();
      for (const x of st.stats) stats.set(x.id, x);
      loaded = true;
      render();
    } catch (e) {
      $('#fleet-loading').textContent = `Could not load the fleet: ${e.message}`;
    }
  }

  async function refreshBot(id) {
    try {
      bots.set(id, await api('GET', `/api/bots/${enc(id)}`));
    } catch (e) {
      if (e.status === 404) bots.delete(id);
    }
    render();
  }

  subscribeEvents((ev) => {
    if (ev.kind === 'deleted') {
      bots.delete(ev.id);
      render();
    } else if (ev.kind === 'state' && ev.observed && bots.has(ev.id)) {
      Object.assign(bots.get(ev.id), ev.observed);
      render();
    } else {
      refreshBot(ev.id);
    }
  }, load);

  subscribeStats((samples) => {
    for (const x of samples) stats.set(x.id, x);
    for (const x of samples) {
      const bot = bots.get(x.id);
      const tr = bot && $(`tr[data-id="${cssEscape(x.id)}"]`, tbody);
      if (tr) fillStats(tr, bot);
    }
  });

  filterName.addEventListener('input', render);
  filterState.addEventListener('change', render);
  $('#select-all').addEventListener('change', (e) => {
    for (const tr of $$('tr[data-id]', tbody)) {
      if (tr.hidden) continue;
      if (e.target.checked) selected.add(tr.dataset.id); else selected.delete(tr.dataset.id);
    }
    updateSelection();
  });

  for (const button of $$('[data-bulk]')) {
    const run = BULK[button.dataset.bulk];
    if (!run) continue;
    button.addEventListener('click', async () => {
      const action = button.dataset.bulk;
      const ids = updateSelection();
      if (!ids.length) return;
      if (CONFIRM[action] && !await CONFIRM[action](ids)) return;
      for (const b of $$('[data-bulk]')) b.disabled = true;
      notify(`${action}: ${ids.length} bot(s)…`);
      // Each bot on its own: one failing does not stop the others.
      const results = await Promise.allSettled(ids.map(run));
      const failed = [];
      const lines = results.map((r, i) => {
        const ok = r.status === 'fulfilled';
        if (!ok) failed.push(`${ids[i]}: ${r.reason.message}`);
        else if (action === 'delete') { bots.delete(ids[i]); selected.delete(ids[i]); }
        else bots.set(r.value.id, r.value);
        return h('li', { 'data-id': ids[i], 'data-result': ok ? 'ok' : 'error',
          text: `${ids[i]}: ${action} ${ok ? 'done' : `failed: ${r.reason.message}`}` });
      });
      const out = $('#bulk-results');
      out.replaceChildren(...lines);
      out.hidden = false;
      render();
      if (action === 'delete') load();
      if (failed.length) notify(`${action} failed for ${failed.join('; ')}`, 'error');
      else notify(`${action}: done for ${ids.length} bot(s)`, 'ok');
    });
  }

  // Uptimes advance on their own; this touches only the page, never the network.
  setInterval(() => {
    for (const tr of $$('tr[data-id]', tbody)) {
      const bot = bots.get(tr.dataset.id);
      const td = cell(tr, 'uptime');
      if (bot && td) td.textContent = uptime(bot);
    }
  }, 5000);

  load();
}

startPage(fleetPage);
