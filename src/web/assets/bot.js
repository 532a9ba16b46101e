// A bot's page (/bots/{id}): state and configuration kept current from /api/events, the
// lifecycle actions, secrets (names only), CPU and memory charts from /stream/stats, and the
// logs, followed live.

import {
  $, $$, h, s, enc, api, notify, confirmAction, fmtBytes, fmtPercent, fmtTime, uptime,
  memoryLimit, STATE_LABEL, subscribeEvents, subscribeStats, startPage,
} from './common.js';
import { showBotUsage } from './llm.js';
import { clearErrors, showErrors } from './forms.js';

function botPage() {
  const id = document.body.dataset.botId;
  const base = `/api/bots/${enc(id)}`;
  let bot = null;
  let history = [];
  let gone = false;

  // ---- state and configuration

  function renderState() {
    if (!bot) return;
    $('#bot-name').textContent = bot.name || bot.id;
    document.title = `${bot.name || bot.id} · botmaker`;
    $('#bot-light').className = `light state-${bot.state}`;
    const badge = $('#bot-state');
    badge.textContent = STATE_LABEL[bot.state] || bot.state;
    badge.dataset.state = bot.state;
    const rowsData = [
      ['Desired state', bot.desired_state],
      ['Observed state', STATE_LABEL[bot.state] || bot.state],
      ['Health', bot.health],
      ['Channels', (bot.channels || []).map((c) => `${c.id}: ${c.state.replace('_', ' ')}${c.detail ? ` (${c.detail})` : ''}`).join('\n') || '—'],
      ['Uptime', uptime(bot)],
      ['Started', fmtTime(bot.started_at)],
      ['Restarts', String(bot.restart_count ?? 0)],
      ['Last exit code', bot.exit_code === null || bot.exit_code === undefined ? '—' : String(bot.exit_code)],
      ['Killed for memory', bot.oom_killed ? 'yes' : 'no'],
      ...(bot.node ? [['Node', `${bot.node} (${bot.node_state || 'unknown'})`]] : []),
      ['Container', bot.container_id ? bot.container_id.slice(0, 12) : '—'],
      ['Image id', bot.image_id ? bot.image_id.replace(/^sha256:/, '').slice(0, 12) : '—'],
      ['Image drift', bot.image_drift ? 'yes: the tag names another image now' : 'no'],
    ];
    $('#state-table tbody').replaceChildren(...rowsData.map(([k, v]) =>
      h('tr', null, h('th', { scope: 'row', text: k }), h('td', { text: v, 'data-key': k }))));
    enableActions();
    renderCrashReason();
  }

  /**
   * Whether an action does anything for the bot as it is: Start on a running bot, Stop on a
   * stopped one and Restart on one that is not up would change nothing.
   */
  function actionUseful(action) {
    if (!bot) return false;
    const up = bot.state === 'running' || bot.state === 'crash_loop';
    switch (action) {
      case 'start': return !(up && bot.desired_state === 'running');
      case 'stop': return up || bot.desired_state === 'running';
      case 'restart': return up || bot.state === 'error';
      default: return true;
    }
  }

  function enableActions() {
    for (const b of $$('[data-action]')) b.disabled = gone || !actionUseful(b.dataset.action);
  }

  /** Why a bot that fails does so: its last exit, an OOM kill, and its last log lines. */
  let reasonFor = '';
  async function renderCrashReason() {
    const box = $('#crash-reason');
    const failing = bot.state === 'error' || bot.state === 'crash_loop';
    if (!failing) { box.hidden = true; reasonFor = ''; return; }
    const what = [];
    what.push(bot.state === 'crash_loop'
      ? `Crash-looping: it keeps exiting (${bot.restart_count ?? 0} restarts).`
      : 'It stopped on its own with an error.');
    if (bot.exit_code !== null && bot.exit_code !== undefined) what.push(`Last exit code: ${bot.exit_code}.`);
    if (bot.oom_killed) what.push('It was killed for using more memory than its limit.');
    $('#crash-summary').textContent = what.join(' ');
    box.hidden = false;
    // The last lines once per container run, not at every event.
    const key = `${bot.container_id}/${bot.restart_count}`;
    if (reasonFor === key) return;
    reasonFor = key;
    try {
      const r = await api('GET', `${base}/logs?tail=10`);
      const lines = (r.lines || []).map((l) => l.message).filter((m) => m !== undefined);
      $('#crash-log').textContent = lines.join('\n') || '(no output)';
    } catch (e) {
      $('#crash-log').textContent = `(logs unavailable: ${e.message})`;
    }
  }

  function renderConfig() {
    const entries = [
      ['Id', bot.id], ['Template', bot.template], ['Image', bot.image],
      ['Command', bot.command && bot.command.length ? bot.command.join(' ') : '(image default)'],
      ['Environment', Object.entries(bot.env || {}).map(([k, v]) => `${k}=${v}`).join('\n') || '—'],
      ['Ports', (bot.ports || []).map((p) => `${p.host_ip || '127.0.0.1'}:${p.host || '(any)'} → ${p.container}/${p.protocol || 'tcp'}`).join('\n') || '—'],
      ['Limits', [
        bot.limits.memory_mb ? `memory ${bot.limits.memory_mb} MiB` : null,
        bot.limits.cpus ? `${bot.limits.cpus} CPUs` : null,
        bot.limits.pids ? `${bot.limits.pids} processes` : null].filter(Boolean).join(', ') || 'none'],
      ['Health probe', bot.health_check ? `GET :${bot.health_check.port}${bot.health_check.path}${bot.health_check.ready_path ? ` (ready: ${bot.health_check.ready_path})` : ''} every ${bot.health_check.interval_secs}s` : 'none'],
      ['Stop grace', bot.stop_timeout_secs ? `${bot.stop_timeout_secs} s` : 'server default'],
      ['Placement', bot.placement ? [bot.placement.node ? `node ${bot.placement.node}` : null,
        ...Object.entries(bot.placement.labels || {}).map(([k, v]) => `${k}=${v}`)].filter(Boolean).join(', ') : 'anywhere'],
      ['Settings', bot.settings && Object.keys(bot.settings).length ? JSON.stringify(bot.settings, null, 2) : '—'],
      ['Created', fmtTime(bot.created_at)], ['Updated', fmtTime(bot.updated_at)],
    ];
    $('#config').replaceChildren(...entries.flatMap(([k, v]) => [h('dt', { text: k }), h('dd', null, h('pre', { text: v }))]));
    fillConfigFields();
    const ta = $('#config-json');
    if (!ta.dataset.dirty) {
      const editable = {
        name: bot.name, image: bot.image, command: bot.command || [], env: bot.env,
        ports: bot.ports, limits: bot.limits, settings: bot.settings,
        health_check: bot.health_check ?? null, network: bot.network ?? null,
        user: bot.user ?? null, stop_timeout_secs: bot.stop_timeout_secs ?? null,
        placement: bot.placement ?? null,
      };
      ta.value = JSON.stringify(editable, null, 2);
    }
  }

  function renderSecrets() {
    const list = $('#secret-list');
    if (!bot.secrets.length) {
      list.replaceChildren(h('li', { class: 'muted', text: 'No secrets.' }));
      return;
    }
    list.replaceChildren(...bot.secrets.map((name) => h('li', { 'data-secret': name },
      h('code', { text: name }), h('span', { class: 'muted', text: ' (value hidden)' }),
      h('span', { class: 'row-actions' },
        h('button', { type: 'button', text: 'Replace', 'aria-label': `Replace ${name}`, onclick: () => {
          $('#secret-name').value = name;
          $('#secret-value').value = '';
          $('#secret-value').focus();
        } }),
        h('button', { type: 'button', class: 'danger', text: 'Delete', 'aria-label': `Delete ${name}`, onclick: async () => {
          if (!await confirmAction(`Delete secret ${name}?`, `The file ${name} is removed from the bot's secrets directory.`, 'Delete secret')) return;
          try {
            await api('DELETE', `${base}/secrets/${enc(name)}`);
            notify(`Secret ${name} deleted`, 'ok');
            await load();
          } catch (e) { notify(`Could not delete ${name}: ${e.message}`, 'error'); }
        } })))));
  }

  function renderUpgrade() {
    const image = $('#upgrade-image');
    if (!image.dataset.dirty) image.value = bot.image;
    $('#drift-note').hidden = !bot.image_drift;
    $('#upgrade-submit').disabled = gone;
  }

  function render() {
    renderState();
    renderConfig();
    renderUpgrade();
    renderSecrets();
  }

  async function load() {
    try {
      bot = await api('GET', base);
      render();
    } catch (e) {
      if (e.status === 404) markGone();
      else notify(`Could not load the bot: ${e.message}`, 'error');
    }
  }

  function markGone() {
    gone = true;
    $('#bot-state').textContent = 'deleted';
    $('#bot-state').dataset.state = 'missing';
    for (const b of $$('[data-action]')) b.disabled = true;
    notify('This bot has been deleted.', 'error');
  }

  // ---- actions

  for (const button of $$('[data-action]')) {
    button.addEventListener('click', async () => {
      const action = button.dataset.action;
      if (action === 'delete') {
        const ok = await confirmAction(`Delete ${id}?`,
          'Its container, secrets and workspace are removed. This cannot be undone.', 'Delete bot');
        if (!ok) return;
      }
      for (const b of $$('[data-action]')) b.disabled = true;
      const label = button.textContent;
      button.textContent = `${label.replace('…', '')}…`;
      try {
        if (action === 'delete') {
          await api('DELETE', base);
          gone = true;
          location.assign('/');
          return;
        }
        bot = await api('POST', `${base}/${action}`);
        render();
        notify(`${action}: done`, 'ok');
      } catch (e) {
        notify(`${action} failed: ${e.message}`, 'error');
      } finally {
        button.textContent = label;
        enableActions();
      }
    });
  }

  // ---- edit configuration: fields (the common settings) or the raw JSON

  const portText = (p) => `${p.host_ip ? `${p.host_ip.includes(':') ? `[${p.host_ip}]` : p.host_ip}:` : ''}${p.host ? `${p.host}:` : ''}${p.container}${p.protocol === 'udp' ? '/udp' : ''}`;
  const orEmpty = (v) => (v === null || v === undefined ? '' : String(v));

  /** What each field shows for the bot as the server describes it. */
  function configText(b) {
    const hc = b.health_check || {};
    return {
      image: b.image || '',
      command: (b.command || []).join('\n'),
      env: Object.entries(b.env || {}).map(([k, v]) => `${k}=${v}`).join('\n'),
      ports: (b.ports || []).map(portText).join('\n'),
      'limits.memory_mb': orEmpty(b.limits && b.limits.memory_mb),
      'limits.cpus': orEmpty(b.limits && b.limits.cpus),
      'limits.pids': orEmpty(b.limits && b.limits.pids),
      'health_check.port': orEmpty(hc.port),
      'health_check.path': orEmpty(hc.path),
      'health_check.interval_secs': orEmpty(hc.interval_secs),
      network: orEmpty(b.network),
      user: orEmpty(b.user),
      stop_timeout_secs: orEmpty(b.stop_timeout_secs),
      'placement.node': orEmpty(b.placement && b.placement.node),
      'placement.labels': Object.entries((b.placement && b.placement.labels) || {}).map(([k, v]) => `${k}=${v}`).join('\n'),
    };
  }

  const configInputs = () => $$('#config-fields [data-config]');
  const fieldValue = (path) => $(`#config-fields [data-config="${path}"]`).value;

  /** Fills the fields from the bot unless someone is editing them. */
  function fillConfigFields() {
    const form = $('#config-form');
    if (form.dataset.dirty) return;
    const text = configText(bot);
    for (const el of configInputs()) {
      el.value = text[el.dataset.config];
      el.dataset.initial = el.value;
    }
  }

  const changed = (...paths) => paths.some((p) => {
    const el = $(`#config-fields [data-config="${p}"]`);
    return el.value !== el.dataset.initial;
  });

  /**
   * The PATCH body from the fields: only the settings that changed (a group such as `limits`
   * or `health_check` is replaced whole, so it is sent whole), and the problems the form can
   * see itself (lines it cannot read). Ranges are the server's to check.
   */
  function collectConfig() {
    const problems = {};
    const problem = (f, m) => { (problems[f] = problems[f] || []).push(m); };
    const lines = (path) => fieldValue(path).split('\n').map((l) => l.trim()).filter((l) => l.length);
    const num = (path) => {
      const raw = fieldValue(path).trim();
      if (!raw) return null;
      const n = Number(raw);
      if (!Number.isFinite(n)) problem(path, 'must be a number');
      return n;
    };
    const text = (path) => fieldValue(path).trim() || null;
    const patch = {};
    if (changed('image')) patch.image = fieldValue('image').trim();
    if (changed('command')) patch.command = lines('command');
    if (changed('env')) {
      patch.env = {};
      lines('env').forEach((l, i) => {
        const eq = l.indexOf('=');
        if (eq <= 0) problem('env', `line ${i + 1}: expected KEY=value`);
        else patch.env[l.slice(0, eq).trim()] = l.slice(eq + 1);
      });
    }
    if (changed('ports')) {
      patch.ports = [];
      lines('ports').forEach((l, i) => {
        // An address has dots or brackets: `18080:8080` is host port 18080, not an address.
        const m = /^(?:(\[[0-9a-fA-F:]+\]|\d+\.[0-9.]+):)?(?:(\d+):)?(\d+)(?:\/(tcp|udp))?$/.exec(l);
        if (!m) { problem('ports', `line ${i + 1}: expected [address:][host port:]container port[/udp]`); return; }
        const p = { container: Number(m[3]) };
        if (m[2]) p.host = Number(m[2]);
        if (m[1]) p.host_ip = m[1].replace(/^\[|\]$/g, '');
        if (m[4]) p.protocol = m[4];
        patch.ports.push(p);
      });
    }
    if (changed('limits.memory_mb', 'limits.cpus', 'limits.pids')) {
      // The LLM budgets live in the same object and have no field here: kept as they are.
      patch.limits = {
        ...(bot.limits || {}),
        memory_mb: num('limits.memory_mb'), cpus: num('limits.cpus'), pids: num('limits.pids'),
      };
    }
    if (changed('health_check.port', 'health_check.path', 'health_check.interval_secs')) {
      const port = num('health_check.port');
      if (port === null) {
        patch.health_check = null;
      } else {
        patch.health_check = { ...(bot.health_check || {}), port };
        if (text('health_check.path')) patch.health_check.path = text('health_check.path');
        const every = num('health_check.interval_secs');
        if (every !== null) patch.health_check.interval_secs = every;
      }
    }
    if (changed('network')) patch.network = text('network');
    if (changed('user')) patch.user = text('user');
    if (changed('stop_timeout_secs')) patch.stop_timeout_secs = num('stop_timeout_secs');
    if (changed('placement.node', 'placement.labels')) {
      // Replaced whole; nothing in either field lets the bot run anywhere again.
      const labels = {};
      lines('placement.labels').forEach((l, i) => {
        const eq = l.indexOf('=');
        if (eq <= 0) problem('placement.labels', `line ${i + 1}: expected key=value`);
        else labels[l.slice(0, eq).trim()] = l.slice(eq + 1).trim();
      });
      const node = text('placement.node');
      patch.placement = node || Object.keys(labels).length ? { labels, ...(node ? { node } : {}) } : null;
    }
    return { patch, problems };
  }

  $('#config-fields').addEventListener('input', () => { $('#config-form').dataset.dirty = '1'; });
  $('#config-json').addEventListener('input', (e) => { e.target.dataset.dirty = '1'; });
  $('#config-raw').addEventListener('change', (e) => {
    $('#config-fields').hidden = e.target.checked;
    $('#config-json-field').hidden = !e.target.checked;
  });
  $('#config-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const form = e.target;
    const out = $('#config-errors');
    const fail = (msgs) => { out.replaceChildren(...msgs.map((m) => h('p', { text: m }))); out.hidden = !msgs.length; };
    clearErrors(form);
    fail([]);
    const raw = $('#config-raw').checked;
    let patch;
    if (raw) {
      try {
        patch = JSON.parse($('#config-json').value);
      } catch (err) {
        fail([`Not valid JSON: ${err.message}`]);
        return;
      }
    } else {
      const c = collectConfig();
      if (Object.keys(c.problems).length) { fail(showErrors(form, c.problems)); return; }
      if (!Object.keys(c.patch).length) { fail(['Nothing changed.']); return; }
      patch = c.patch;
    }
    patch.apply = $('#config-apply').checked;
    const submit = $('#config-submit');
    submit.disabled = true;
    try {
      bot = await api('PATCH', base, patch);
      delete $('#config-json').dataset.dirty;
      delete form.dataset.dirty;
      render();
      notify(patch.apply ? 'Configuration saved and applied' : 'Configuration saved; apply it to take effect', 'ok');
    } catch (err) {
      // In the JSON view every message goes in the list; in the fields, next to its field.
      fail(err.fields ? (raw ? Object.entries(err.fields).flatMap(([f, ms]) => ms.map((m) => `${f}: ${m}`)) : showErrors(form, err.fields)) : [err.message]);
    } finally {
      submit.disabled = false;
    }
  });

  // ---- upgrade

  $('#upgrade-image').addEventListener('input', (e) => { e.target.dataset.dirty = '1'; });
  $('#upgrade-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const form = e.target;
    clearErrors(form);
    const image = $('#upgrade-image').value.trim();
    const timeout = Number($('#upgrade-timeout').value);
    const body = { timeout_secs: timeout };
    if (image) body.image = image;
    const submit = $('#upgrade-submit');
    const result = $('#upgrade-result');
    submit.disabled = true;
    result.textContent = 'Upgrading: waiting for the new container to prove itself…';
    try {
      const out = await api('POST', `${base}/upgrade`, body);
      bot = out.bot;
      delete $('#upgrade-image').dataset.dirty;
      render();
      const down = out.downtime_ms === undefined ? '' : ` (down ${(out.downtime_ms / 1000).toFixed(1)} s)`;
      if (out.result === 'unchanged') result.textContent = `Already running the image ${out.image} names.`;
      else if (out.previous_image === out.image) result.textContent = `Upgraded: now running the image ${out.image} names${down}.`;
      else result.textContent = `Upgraded from ${out.previous_image} to ${out.image}${down}.`;
      notify(`upgrade: ${out.result}`, 'ok');
    } catch (err) {
      const unplaced = err.fields ? showErrors(form, err.fields) : [err.message];
      result.textContent = unplaced.join(' ');
      notify(err.status === 409 ? 'Upgrade rolled back: the old container runs again' : `Upgrade failed: ${err.message}`, 'error');
      await load();
    } finally {
      submit.disabled = gone;
    }
  });

  // ---- secrets

  $('#secret-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const form = e.target;
    clearErrors(form);
    const name = $('#secret-name').value.trim();
    const valueInput = $('#secret-value');
    const local = {};
    if (!name) local.name = ['is required'];
    if (!valueInput.value) local.value = ['is required'];
    if (Object.keys(local).length) { showErrors(form, local); return; }
    const submit = $('#secret-submit');
    submit.disabled = true;
    try {
      const change = await api('PUT', `${base}/secrets/${enc(name)}`, { value: valueInput.value });
      valueInput.value = '';
      $('#secret-name').value = '';
      notify(`Secret ${name} set: ${change.effect}`, 'ok');
      await load();
    } catch (err) {
      const unplaced = err.fields ? showErrors(form, err.fields) : [err.message];
      if (unplaced.length) showErrors(form, { name: unplaced });
    } finally {
      submit.disabled = false;
    }
  });

  // ---- resources chart

  // The chart's range: 'live' (the last 10 minutes of samples, from /stream/stats) or '1h' /
  // '24h' (per-minute means from GET /api/bots/{id}/stats/history, reloaded every minute).
  const RANGES = { live: [10 * 60 * 1000, '10 min ago'], '1h': [3600 * 1000, '1 h ago'], '24h': [24 * 3600 * 1000, '24 h ago'] };
  let range = 'live';
  let minutes = [];

  function drawChart(svg, points, max, fmt, limitLine) {
    const W = 600; const H = 140; const L = 56; const R = 8; const T = 8; const B = 20;
    const now = Date.now();
    const [span, ago] = RANGES[range];
    const t0 = now - span;
    const x = (t) => L + ((t - t0) / span) * (W - L - R);
    const y = (v) => T + (1 - Math.min(v, max) / max) * (H - T - B);
    const kids = [];
    for (const f of [0, 0.5, 1]) {
      kids.push(s('line', { class: 'grid', x1: L, x2: W - R, y1: y(max * f), y2: y(max * f) }));
      kids.push(s('text', { class: 'axis', 'data-tick': f, x: L - 6, y: y(max * f) + 4, 'text-anchor': 'end' }, fmt(max * f)));
    }
    kids.push(s('text', { class: 'axis', x: L, y: H - 4 }, ago));
    kids.push(s('text', { class: 'axis', x: W - R, y: H - 4, 'text-anchor': 'end' }, 'now'));
    if (limitLine) kids.push(s('line', { class: 'limit', x1: L, x2: W - R, y1: y(limitLine), y2: y(limitLine) }));
    const pts = points.filter((p) => p.t >= t0);
    if (pts.length) {
      const line = pts.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
      const area = `${x(pts[0].t).toFixed(1)},${y(0)} ${line} ${x(pts[pts.length - 1].t).toFixed(1)},${y(0)}`;
      kids.push(s('polygon', { class: 'area', points: area }));
      kids.push(s('polyline', { class: 'series', points: line }));
      const last = pts[pts.length - 1];
      kids.push(s('circle', { class: 'dot', cx: x(last.t), cy: y(last.v), r: 3 }));
    } else {
      kids.push(s('text', { class: 'axis', x: (W + L) / 2, y: H / 2, 'text-anchor': 'middle' }, `no samples since ${ago}`));
    }
    svg.replaceChildren(...kids);
  }

  /**
   * The smallest "nice" byte count (1, 2 or 5 times a power of ten of KiB, MiB or GiB) at or
   * above `n`, at least 1 MiB: an axis top for a bot without a memory limit, from its samples.
   */
  function niceBytesCeil(n) {
    const MiB = 1024 * 1024;
    if (!(n > MiB)) return MiB;
    const unit = n >= 1024 * MiB ? 1024 * MiB : MiB;
    const v = n / unit;
    const pow = 10 ** Math.floor(Math.log10(v));
    const step = [1, 2, 5, 10].find((k) => k * pow >= v);
    return step * pow * unit;
  }

  function renderStats() {
    const pts = range === 'live'
      ? history.filter((p) => p.read).map((p) => ({ ...p, t: new Date(p.read).getTime() }))
      : minutes.map((m) => ({ ...m, t: new Date(m.at).getTime() + 30 * 1000 }));
    const last = history[history.length - 1];
    // Only a configured limit is a meaningful top: without one Docker reports the host's
    // memory, and the chart would be a flat line at the bottom of a 24 GiB axis.
    const configured = bot && bot.limits && bot.limits.memory_mb ? memoryLimit(bot, last) : null;
    const memMax = configured || niceBytesCeil(Math.max(0, ...pts.map((p) => p.memory_bytes)) * 1.1);
    const cpuLimit = bot && bot.limits && bot.limits.cpus ? bot.limits.cpus * 100 : null;
    const cpuMax = Math.max(cpuLimit || 100, ...pts.map((p) => p.cpu_percent * 1.1));
    drawChart($('#chart-cpu'), pts.map((p) => ({ t: p.t, v: p.cpu_percent })), cpuMax, (v) => `${Math.round(v)} %`, cpuLimit);
    drawChart($('#chart-mem'), pts.map((p) => ({ t: p.t, v: p.memory_bytes })), memMax, fmtBytes, null);
    const summary = $('#stats-summary');
    if (last) {
      const of = configured ? ` of ${fmtBytes(configured)}` : ' (no limit)';
      summary.textContent = `Now: CPU ${fmtPercent(last.cpu_percent)}, memory ${fmtBytes(last.memory_bytes)}${of}, ${last.pids} process${last.pids === 1 ? '' : 'es'}.`;
      $('#chart-cpu').setAttribute('aria-label', `CPU use since ${RANGES[range][1]}; now ${fmtPercent(last.cpu_percent)}`);
      $('#chart-mem').setAttribute('aria-label', `Memory use since ${RANGES[range][1]}; now ${fmtBytes(last.memory_bytes)}${of}`);
    }
  }

  async function loadMinutes() {
    if (range === 'live') return;
    const since = new Date(Date.now() - RANGES[range][0]).toISOString();
    try {
      const h = await api('GET', `${base}/stats/history?since=${enc(since)}`);
      minutes = h.minutes || [];
    } catch (e) {
      minutes = [];
      notify(`Could not load the stats history: ${e.message}`, 'error');
    }
    renderStats();
  }

  $('#stats-range').addEventListener('change', (ev) => {
    range = ev.target.value;
    if (range === 'live') renderStats(); else loadMinutes();
  });
  setInterval(loadMinutes, 60 * 1000);

  async function loadStats() {
    try {
      const st = await api('GET', `${base}/stats`);
      history = st.history || [];
    } catch (e) { history = []; }
    renderStats();
  }

  subscribeStats((samples) => {
    const mine = samples.filter((x) => x.id === id);
    if (!mine.length) return;
    history.push(...mine);
    const cutoff = Date.now() - 10 * 60 * 1000;
    history = history.filter((p) => !p.read || new Date(p.read).getTime() >= cutoff).slice(-120);
    renderStats();
  });

  // ---- logs

  const logEl = $('#log');
  const MAX_LINES = 5000;
  let logLines = [];
  let follow = null;
  let stick = true;
  let reconnectTimer = null;

  const logStatus = (t) => { $('#log-status').textContent = t; };
  const filterText = () => $('#log-filter').value.toLowerCase();

  function addLine(l) {
    logLines.push(l);
    const q = filterText();
    const div = h('div', { class: `line ${l.stream || ''}` },
      l.timestamp ? h('time', { datetime: l.timestamp, text: new Date(l.timestamp).toLocaleTimeString() }) : null,
      h('span', { class: 'msg', text: l.message }));
    if (q && !l.message.toLowerCase().includes(q)) div.hidden = true;
    logEl.append(div);
    if (logLines.length > MAX_LINES) {
      logLines = logLines.slice(-MAX_LINES);
      while (logEl.childElementCount > MAX_LINES) logEl.firstElementChild.remove();
    }
    if (stick) logEl.scrollTop = logEl.scrollHeight;
  }

  function stopFollow() {
    clearTimeout(reconnectTimer);
    if (follow) { follow.close(); follow = null; }
  }

  async function loadLogs() {
    stopFollow();
    logLines = [];
    logEl.replaceChildren();
    stick = true;
    $('#log-resume').hidden = true;
    const tail = Math.max(1, Math.min(10000, Number($('#log-tail').value) || 200));
    if ($('#log-follow').checked) {
      logStatus('Following…');
      follow = new EventSource(`${base}/logs?follow=true&tail=${tail}`);
      follow.addEventListener('line', (e) => { try { addLine(JSON.parse(e.data)); } catch (err) { /* skip */ } });
      follow.addEventListener('open', () => logStatus('Following new lines.'));
      follow.addEventListener('detached', () => logStatus('The container stopped; waiting for it to run again…'));
      follow.addEventListener('attached', () => logStatus('The container runs again; following.'));
      follow.addEventListener('gone', () => { logStatus('The container was removed.'); stopFollow(); });
      follow.addEventListener('unauthorized', () => {
        stopFollow();
        logStatus('The session ended.');
        api('GET', '/api/stats').catch(() => {});
      });
      follow.addEventListener('error', () => {
        // A browser reconnect would replay the tail: start over cleanly instead.
        stopFollow();
        if (gone) return;
        logStatus('Connection lost; reconnecting…');
        reconnectTimer = setTimeout(loadLogs, 3000);
      });
    } else {
      logStatus('Loading…');
      try {
        const r = await api('GET', `${base}/logs?tail=${tail}`);
        r.lines.forEach(addLine);
        logStatus(`${r.lines.length} line(s).`);
      } catch (e) {
        logStatus(`Could not read the logs: ${e.message}`);
      }
    }
  }

  logEl.addEventListener('scroll', () => {
    const atBottom = logEl.scrollHeight - logEl.scrollTop - logEl.clientHeight < 8;
    stick = atBottom;
    $('#log-resume').hidden = atBottom;
    logEl.dataset.paused = atBottom ? 'false' : 'true';
  });
  $('#log-resume').addEventListener('click', () => {
    stick = true;
    logEl.scrollTop = logEl.scrollHeight;
    $('#log-resume').hidden = true;
    logEl.focus();
  });
  $('#log-filter').addEventListener('input', () => {
    const q = filterText();
    for (const div of logEl.children) {
      div.hidden = Boolean(q) && !$('.msg', div).textContent.toLowerCase().includes(q);
    }
    if (stick) logEl.scrollTop = logEl.scrollHeight;
  });
  $('#log-load').addEventListener('click', loadLogs);
  $('#log-follow').addEventListener('change', loadLogs);
  $('#log-tail').addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); loadLogs(); } });
  $('#log-download').addEventListener('click', () => {
    const text = logLines.map((l) => `${l.timestamp || ''} ${l.stream || ''} ${l.message}`.trim()).join('\n');
    const url = URL.createObjectURL(new Blob([`${text}\n`], { type: 'text/plain' }));
    const a = h('a', { href: url, download: `${id}-logs.txt` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  });

  // ---- live state

  subscribeEvents((ev) => {
    if (ev.id !== id) return;
    if (ev.kind === 'deleted') { markGone(); stopFollow(); return; }
    if (ev.kind === 'budget_exceeded') { showBotUsage(id); return; }
    if (ev.kind === 'state' && ev.observed && bot) {
      Object.assign(bot, ev.observed);
      renderState();
    } else {
      load();
    }
  }, load);

  // Uptime advances on its own; this touches only the page, never the network.
  setInterval(() => {
    const cell = $('#state-table td[data-key="Uptime"]');
    if (bot && cell) cell.textContent = uptime(bot);
  }, 1000);
  // A hidden tab lets its log stream go (see liveStream) and catches up when shown.
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) stopFollow();
    else if ($('#log-follow').checked && !gone) loadLogs();
  });
  load().then(() => { loadStats(); loadLogs(); showBotUsage(id); });
}

startPage(botPage);
