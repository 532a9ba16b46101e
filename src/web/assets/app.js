// botmaker dashboard. One file, no framework, no build step: the server renders each page's
// shell and marks it with <body data-page="...">; the matching module below fills it from the
// JSON API (same origin, session cookie, X-CSRF-Token on every change) and keeps it current from
// the server's event streams. Text is always set with textContent, never parsed as HTML.
'use strict';

(() => {
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const CSRF = ($('meta[name="csrf-token"]') || {}).content || '';
  const enc = encodeURIComponent;

  // ---------------------------------------------------------------- DOM helpers

  /** Element with attributes (`text` sets textContent, `on*` adds listeners) and children. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    setAttrs(el, attrs);
    for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return el;
  }

  function setAttrs(el, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') el.textContent = v;
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, String(v));
    }
  }

  // ---------------------------------------------------------------- formatting

  function fmtBytes(n) {
    if (n === null || n === undefined) return '—';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    let v = Number(n);
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
    return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
  }

  function fmtDuration(secs) {
    secs = Math.max(0, Math.floor(secs));
    const d = Math.floor(secs / 86400);
    const hr = Math.floor((secs % 86400) / 3600);
    const m = Math.floor((secs % 3600) / 60);
    const sec = secs % 60;
    if (d) return `${d}d ${hr}h`;
    if (hr) return `${hr}h ${m}m`;
    if (m) return `${m}m ${sec}s`;
    return `${sec}s`;
  }

  function fmtTime(iso) {
    if (!iso) return '—';
    const t = new Date(iso);
    return Number.isNaN(t.getTime()) ? String(iso) : t.toLocaleString();
  }

  function fmtPercent(p) {
    if (p === null || p === undefined || Number.isNaN(p)) return '—';
    return `${p >= 10 ? p.toFixed(0) : p.toFixed(1)} %`;
  }

  function uptime(bot) {
    if (bot.state !== 'running' || !bot.started_at) return '—';
    return fmtDuration((Date.now() - new Date(bot.started_at).getTime()) / 1000);
  }

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.error) || `request failed (HTTP ${status})`);
      this.status = status;
      this.code = body && body.code;
      this.fields = (body && body.fields) || null;
    }
  }

  /** Calls the JSON API; resolves to the parsed body, rejects with an ApiError. */
  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (method !== 'GET') headers['X-CSRF-Token'] = CSRF;
    const init = { method, headers, credentials: 'same-origin' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, { error: 'the server cannot be reached', code: 'NETWORK' });
    }
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (res.status === 401) {
      location.assign(`/login?next=${enc(location.pathname)}`);
    }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }

  // ---------------------------------------------------------------- page furniture

  let toastTimer = null;
  function notify(message, kind = 'info') {
    const t = $('#toast');
    if (!t) return;
    t.textContent = message;
    t.dataset.kind = kind;
    t.classList.add('shown');
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => t.classList.remove('shown'), kind === 'error' ? 10000 : 5000);
  }

  function setLive(state) {
    const el = $('#live');
    if (!el) return;
    el.dataset.state = state;
    el.textContent = { live: 'live', reconnecting: 'reconnecting…', connecting: 'connecting…' }[state] || state;
  }

  /** Asks for confirmation in the page's <dialog>; resolves to true or false. */
  function confirmAction(title, text, okLabel) {
    const d = $('#confirm');
    $('#confirm-title').textContent = title;
    $('#confirm-text').textContent = text;
    const ok = $('#confirm-ok');
    ok.textContent = okLabel;
    return new Promise((resolve) => {
      d.returnValue = '';
      ok.onclick = () => d.close('ok');
      $('#confirm-cancel').onclick = () => d.close('cancel');
      d.onclose = () => resolve(d.returnValue === 'ok');
      d.showModal();
      $('#confirm-cancel').focus();
    });
  }

  /**
   * An EventSource that lets go while the tab is hidden and comes back when it is shown again.
   * Browsers allow only six connections per server over HTTP/1.1, shared by every tab, so
   * streams of background tabs would otherwise starve the tab in front. `onGap` runs whenever
   * events may have been missed (after a hidden spell or a broken connection).
   */
  function liveStream(url, listeners, onGap, onState) {
    let es = null;
    let gap = false;
    let retry = null;
    const state = (s) => { if (onState) onState(s); };
    const open = () => {
      clearTimeout(retry);
      if (es) return;
      es = new EventSource(url);
      es.addEventListener('open', () => {
        state('live');
        if (gap) { gap = false; onGap(); }
      });
      es.addEventListener('error', () => {
        gap = true;
        state('reconnecting');
        if (es && es.readyState === EventSource.CLOSED) {
          // The browser gave up (a non-stream answer, e.g. an expired session): check the
          // session (a 401 leads to the login page), then try again.
          es = null;
          retry = setTimeout(() => api('GET', '/api/stats').then(open, open), 3000);
        }
      });
      for (const [name, fn] of Object.entries(listeners)) {
        es.addEventListener(name, (e) => {
          let data = e.data;
          try { data = JSON.parse(e.data); } catch (err) { /* not JSON: pass the text */ }
          fn(data);
        });
      }
    };
    const close = () => {
      clearTimeout(retry);
      if (es) { es.close(); es = null; gap = true; }
    };
    document.addEventListener('visibilitychange', () => (document.hidden ? close() : open()));
    window.addEventListener('pagehide', close);
    open();
  }

  /**
   * Follows GET /api/events: `bot` events ({id, kind, observed?, at}) and `resync` (missed
   * events: re-read everything).
   */
  let subscribed = false;
  function subscribeEvents(onBot, onResync) {
    subscribed = true;
    const bot = (ev) => { if (ev && typeof ev === 'object' && ev.id) onBot(ev); };
    liveStream('/api/events', { bot, resync: () => onResync() }, onResync, setLive);
  }

  /** Follows /stream/stats: each event is an array of new samples ({id, cpu_percent, ...}). */
  function subscribeStats(onSamples) {
    liveStream('/stream/stats', { stats: (samples) => { if (Array.isArray(samples)) onSamples(samples); } }, () => {});
  }

  // ---------------------------------------------------------------- field errors

  function clearErrors(root) {
    for (const slot of $$('[data-error-for]', root)) { slot.textContent = ''; slot.hidden = true; }
    for (const el of $$('[aria-invalid]', root)) el.removeAttribute('aria-invalid');
  }

  /** Readable rest of a field path below the slot that shows it (`[0].host` → `line 1: host`). */
  function restLabel(rest) {
    return rest
      .replace(/^\.?\[(\d+)\]\.?/, (m, i) => `line ${Number(i) + 1}${m.endsWith('.') ? ', ' : ''}`)
      .replace(/^\./, '');
  }

  /**
   * Shows the server's `fields` ({"path": ["msg", ...]}) next to the inputs they name: the slot
   * `[data-error-for=path]`, else the nearest enclosing path's slot (`env.FOO` → `env`) with
   * the rest of the path prefixed. Returns the messages that found no slot; `placed`, if
   * given, receives {text, target} for each one shown, for an error summary.
   */
  function showErrors(root, fields, resolve, placed) {
    const unplaced = [];
    for (const [path, messages] of Object.entries(fields || {})) {
      let slot = resolve ? resolve(path) : null;
      let prefix = slot ? path : '';
      for (let p = path; !slot && p; p = parentPath(p)) {
        slot = $(`[data-error-for="${cssEscape(p)}"]`, root);
        prefix = p;
      }
      if (!slot) { for (const m of messages) unplaced.push(`${path}: ${m}`); continue; }
      const rest = restLabel(path.slice(prefix.length));
      for (const m of messages) slot.append(h('span', { class: 'msg', text: rest ? `${rest}: ${m}` : m }));
      slot.hidden = false;
      const input = $(`[aria-describedby~="${slot.id}"]`, root);
      if (input) input.setAttribute('aria-invalid', 'true');
      if (placed) {
        const target = input || slot;
        const label = input && $(`label[for="${cssEscape(input.id)}"]`, root);
        const name = label ? label.textContent : path;
        for (const m of messages) placed.push({ text: `${name}${rest ? ` (${rest})` : ''}: ${m}`, target });
      }
    }
    return unplaced;
  }

  function parentPath(p) {
    const i = Math.max(p.lastIndexOf('.'), p.lastIndexOf('['));
    return i > 0 ? p.slice(0, i) : '';
  }

  function cssEscape(v) {
    return window.CSS && CSS.escape ? CSS.escape(v) : v.replace(/["\\]/g, '\\$&');
  }

  // ---------------------------------------------------------------- bot bits shared by pages

  const STATE_LABEL = {
    running: 'running', created: 'created', stopped: 'stopped', error: 'error',
    crash_loop: 'crash loop', missing: 'missing',
  };

  function stateLight(state) {
    return h('span', { class: `light state-${state}`, 'aria-hidden': 'true' });
  }

  function memoryLimit(bot, sample) {
    if (bot && bot.limits && bot.limits.memory_mb) return bot.limits.memory_mb * 1024 * 1024;
    return sample ? sample.memory_limit_bytes : null;
  }

  // ================================================================ fleet page

  function fleetPage() {
    const tbody = $('#fleet-rows');
    const bots = new Map();
    const stats = new Map();
    const selected = new Set();
    const filterName = $('#filter-name');
    const filterState = $('#filter-state');
    let loaded = false;

    function cells(tr) {
      return tr.children;
    }

    function row(bot) {
      let tr = $(`tr[data-id="${cssEscape(bot.id)}"]`, tbody);
      if (!tr) {
        const box = h('input', {
          type: 'checkbox', class: 'select', 'aria-label': `Select ${bot.id}`,
          onchange: (e) => { if (e.target.checked) selected.add(bot.id); else selected.delete(bot.id); updateSelection(); },
        });
        tr = h('tr', { 'data-id': bot.id },
          h('td', null, box), h('td', { class: 'state-cell' }), h('td', { class: 'bot-cell' }),
          h('td', { class: 'health' }), h('td', { class: 'uptime num' }), h('td', { class: 'restarts num' }),
          h('td', { class: 'cpu' }), h('td', { class: 'mem' }), h('td', { class: 'image' }));
      }
      return tr;
    }

    function fill(tr, bot) {
      const c = cells(tr);
      tr.dataset.state = bot.state;
      c[1].replaceChildren(stateLight(bot.state), h('span', { class: 'state', text: STATE_LABEL[bot.state] || bot.state }));
      const link = h('a', { href: `/bots/${enc(bot.id)}`, text: bot.name || bot.id });
      c[2].replaceChildren(link);
      if (bot.name && bot.name !== bot.id) c[2].append(h('div', { class: 'muted small', text: bot.id }));
      c[3].textContent = bot.health && bot.health !== 'none' ? bot.health : '—';
      c[3].dataset.health = bot.health || 'none';
      c[4].textContent = uptime(bot);
      c[5].textContent = String(bot.restart_count ?? 0);
      c[8].replaceChildren(h('code', { text: bot.image }));
      fillStats(tr, bot);
    }

    function fillStats(tr, bot) {
      const c = cells(tr);
      const sample = bot.state === 'running' ? stats.get(bot.id) : null;
      if (!sample) {
        c[6].textContent = '—';
        c[7].textContent = '—';
        return;
      }
      const cpuMax = bot.limits && bot.limits.cpus ? bot.limits.cpus * 100 : 100;
      c[6].replaceChildren(
        h('meter', { min: 0, max: cpuMax, value: Math.min(sample.cpu_percent, cpuMax), 'aria-hidden': 'true' }),
        h('span', { text: ` ${fmtPercent(sample.cpu_percent)}${bot.limits && bot.limits.cpus ? ` of ${bot.limits.cpus * 100} %` : ''}` }));
      const limit = memoryLimit(bot, sample);
      c[7].replaceChildren(
        h('meter', { min: 0, max: limit || 1, value: sample.memory_bytes, high: (limit || 1) * 0.8, 'aria-hidden': 'true' }),
        h('span', { text: ` ${fmtBytes(sample.memory_bytes)} / ${fmtBytes(limit)}` }));
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
      button.addEventListener('click', async () => {
        const action = button.dataset.bulk;
        const ids = updateSelection();
        if (!ids.length) return;
        for (const b of $$('[data-bulk]')) b.disabled = true;
        notify(`${action}: ${ids.length} bot(s)…`);
        const results = await Promise.allSettled(ids.map((id) => api('POST', `/api/bots/${enc(id)}/${action}`)));
        const failed = [];
        results.forEach((r, i) => {
          if (r.status === 'fulfilled') bots.set(r.value.id, r.value);
          else failed.push(`${ids[i]}: ${r.reason.message}`);
        });
        render();
        if (failed.length) notify(`${action} failed for ${failed.join('; ')}`, 'error');
        else notify(`${action}: done for ${ids.length} bot(s)`, 'ok');
      });
    }

    // Uptimes advance on their own; this touches only the page, never the network.
    setInterval(() => {
      for (const tr of $$('tr[data-id]', tbody)) {
        const bot = bots.get(tr.dataset.id);
        if (bot) cells(tr)[4].textContent = uptime(bot);
      }
    }, 5000);

    load();
  }

  // ================================================================ create page

  function newBotPage() {
    const form = $('#create-form');
    const rows = $('#secret-rows');
    const summary = $('#form-summary');
    let rowCount = 0;

    const template = () => ($('input[name="template"]:checked', form) || {}).value || 'generic';
    const field = (path) => $(`[data-field="${cssEscape(path)}"]`, form);
    const value = (path) => { const el = field(path); return el ? el.value.trim() : ''; };

    function addSecretRow(name = '', suggested = false) {
      rowCount += 1;
      const n = rowCount;
      const errId = `err-secret-${n}`;
      const nameInput = h('input', {
        type: 'text', id: `secret-name-${n}`, class: 'secret-name', value: name, autocomplete: 'off',
        spellcheck: 'false', autocapitalize: 'characters', 'aria-describedby': errId,
      });
      const valueInput = h('input', {
        type: 'password', id: `secret-value-${n}`, class: 'secret-value', autocomplete: 'new-password',
        'aria-describedby': errId,
      });
      const slot = h('p', { class: 'field-error', id: errId, 'data-error-for': `secrets.${name}`, hidden: true });
      nameInput.addEventListener('input', () => { slot.dataset.errorFor = `secrets.${nameInput.value.trim()}`; });
      const row = h('div', { class: 'secret-row', 'data-secret-row': '', 'data-suggested': suggested ? 'true' : null },
        h('div', { class: 'field' }, h('label', { for: nameInput.id, text: 'Name' }), nameInput),
        h('div', { class: 'field' }, h('label', { for: valueInput.id, text: 'Value' }), valueInput),
        h('button', { type: 'button', class: 'remove', text: 'Remove', 'aria-label': `Remove secret ${name || n}`, onclick: () => row.remove() }),
        slot);
      rows.append(row);
      return row;
    }

    function secretRow(name) {
      return $$('[data-secret-row]', rows).find((r) => $('.secret-name', r).value.trim() === name);
    }

    /** The secrets the openclaw settings need, from the provider and the channels' data. */
    function suggestSecrets() {
      if (template() !== 'openclaw') return;
      const names = [];
      const provider = value('settings.provider').toLowerCase();
      if (provider && provider !== 'ollama' && /^[a-z0-9]+$/.test(provider)) names.push(`${provider.toUpperCase()}_API_KEY`);
      for (const box of $$('input[name="channel"]:checked', form)) names.push(...box.dataset.secrets.split(' '));
      // Drop untouched suggestions nobody needs any more; add the missing ones.
      for (const r of $$('[data-secret-row][data-suggested="true"]', rows)) {
        const name = $('.secret-name', r).value.trim();
        if (!names.includes(name) && !$('.secret-value', r).value) r.remove();
      }
      for (const name of names) if (!secretRow(name)) addSecretRow(name, true);
    }

    function onTemplate() {
      const oc = template() === 'openclaw';
      $('#openclaw-settings').hidden = !oc;
      const image = field('image');
      image.placeholder = oc ? 'empty: the template\'s OpenClaw image' : 'e.g. mybot:1.0';
      image.required = !oc;
      suggestSecrets();
    }

    function lines(path) {
      return field(path).value.split('\n').map((l) => l.trim()).filter((l) => l.length);
    }

    /** The create body, or client-side problems by field when the form cannot even be read. */
    function collect() {
      const problems = {};
      const problem = (f, m) => { (problems[f] = problems[f] || []).push(m); };
      const body = { id: value('id'), template: template(), start: $('#f-start').checked };
      if (value('name')) body.name = value('name');
      if (value('image')) body.image = value('image');
      const command = field('command').value.split('\n').map((l) => l.trim()).filter((l) => l.length);
      if (command.length) body.command = command;

      const env = {};
      lines('env').forEach((l, i) => {
        const eq = l.indexOf('=');
        if (eq <= 0) problem('env', `line ${i + 1}: expected KEY=value`);
        else env[l.slice(0, eq).trim()] = l.slice(eq + 1);
      });
      if (Object.keys(env).length) body.env = env;

      const ports = [];
      lines('ports').forEach((l, i) => {
        const m = /^(?:(\[[0-9a-fA-F:]+\]|[0-9.]+):)?(?:(\d+):)?(\d+)(?:\/(tcp|udp))?$/.exec(l);
        if (!m) { problem('ports', `line ${i + 1}: expected [address:][host port:]container port[/udp]`); return; }
        const p = { container: Number(m[3]) };
        if (m[2]) p.host = Number(m[2]);
        if (m[1]) p.host_ip = m[1].replace(/^\[|\]$/g, '');
        if (m[4]) p.protocol = m[4];
        if (p.container > 65535 || (p.host || 0) > 65535) problem('ports', `line ${i + 1}: ports are 1-65535`);
        ports.push(p);
      });
      if (ports.length) body.ports = ports;

      const limits = {};
      for (const [key, integer] of [['memory_mb', true], ['cpus', false], ['pids', true]]) {
        const raw = value(`limits.${key}`);
        if (!raw) continue;
        const n = Number(raw);
        if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) problem(`limits.${key}`, integer ? 'must be a whole number' : 'must be a number');
        else limits[key] = n;
      }
      if (Object.keys(limits).length) body.limits = limits;

      const probePort = value('health_check.port');
      if (probePort) {
        const n = Number(probePort);
        if (!Number.isInteger(n)) problem('health_check.port', 'must be a port number');
        body.health_check = { port: n };
        if (value('health_check.path')) body.health_check.path = value('health_check.path');
      } else if (value('health_check.path')) {
        problem('health_check.port', 'is needed for a health probe');
      }

      const secrets = {};
      for (const r of $$('[data-secret-row]', rows)) {
        const name = $('.secret-name', r).value.trim();
        const v = $('.secret-value', r).value;
        // Rows without a value (such as untouched suggestions) are not sent: the server then
        // says which secrets the bot still needs.
        if (!v) continue;
        if (!name) { problem('secrets', 'a secret with a value needs a name'); continue; }
        if (name in secrets) problem(`secrets.${name}`, 'is given twice');
        secrets[name] = v;
      }
      if (Object.keys(secrets).length) body.secrets = secrets;

      if (body.template === 'openclaw') {
        const settings = {
          provider: value('settings.provider'),
          model: value('settings.model'),
          channels: $$('input[name="channel"]:checked', form).map((b) => b.value),
        };
        const persona = {};
        for (const k of ['name', 'soul', 'identity']) {
          const el = field(`settings.persona.${k}`);
          if (el.value.trim()) persona[k] = k === 'name' ? el.value.trim() : el.value;
        }
        if (Object.keys(persona).length) settings.persona = persona;
        const gp = value('settings.gateway_port');
        if (gp) {
          if (!Number.isInteger(Number(gp))) problem('settings.gateway_port', 'must be a port number');
          settings.gateway_port = Number(gp);
        }
        if (value('settings.base_url')) settings.base_url = value('settings.base_url');
        body.settings = settings;
      }
      return { body, problems };
    }

    /** Lists every problem at the top, each linked to its field, and moves focus there. */
    function showSummary(placed, unplaced) {
      const n = placed.length + unplaced.length;
      // In reading order, like the fields.
      placed.sort((a, b) => (a.target.compareDocumentPosition(b.target) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1));
      summary.replaceChildren(
        h('p', { text: `The bot was not created: ${n === 1 ? 'one problem' : `${n} problems`} to fix.` }),
        h('ul', null,
          placed.map(({ text, target }) => h('li', null, h('a', {
            href: `#${target.id}`,
            text,
            onclick: (e) => { e.preventDefault(); target.focus(); target.scrollIntoView({ block: 'center' }); },
          }))),
          unplaced.map((m) => h('li', { text: m }))));
      summary.hidden = false;
      summary.focus();
    }

    function showProblems(fields) {
      const placed = [];
      const unplaced = showErrors(form, fields, resolve, placed);
      showSummary(placed, unplaced);
    }

    /** Server field paths that name something the form shows elsewhere. */
    function resolve(path) {
      if (path.startsWith('secrets.')) {
        const name = path.slice('secrets.'.length);
        const r = secretRow(name) || addSecretRow(name, true);
        const slot = $('.field-error', r);
        slot.dataset.errorFor = path;
        return slot;
      }
      if (path.startsWith('settings.channels')) return $('[data-error-for="settings.channels"]', form);
      return null;
    }

    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      clearErrors(form);
      summary.hidden = true;
      const { body, problems } = collect();
      if (Object.keys(problems).length) {
        showProblems(problems);
        return;
      }
      const submit = $('#create-submit');
      submit.disabled = true;
      submit.textContent = body.start ? 'Creating and starting…' : 'Creating…';
      try {
        const bot = await api('POST', '/api/bots', body);
        location.assign(`/bots/${enc(bot.id)}`);
      } catch (err) {
        submit.disabled = false;
        submit.textContent = 'Create bot';
        if (err.fields) showProblems(err.fields);
        else showSummary([], [err.message]);
      }
    });

    for (const r of $$('input[name="template"]', form)) r.addEventListener('change', onTemplate);
    field('settings.provider').addEventListener('change', suggestSecrets);
    for (const b of $$('input[name="channel"]', form)) b.addEventListener('change', suggestSecrets);
    $('#add-secret').addEventListener('click', () => $('.secret-name', addSecretRow()).focus());
    onTemplate();
  }

  // ================================================================ bot page

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
        ['Container', bot.container_id ? bot.container_id.slice(0, 12) : '—'],
        ['Image id', bot.image_id ? bot.image_id.replace(/^sha256:/, '').slice(0, 12) : '—'],
      ];
      $('#state-table tbody').replaceChildren(...rowsData.map(([k, v]) =>
        h('tr', null, h('th', { scope: 'row', text: k }), h('td', { text: v, 'data-key': k }))));
      for (const b of $$('[data-action]')) b.disabled = gone;
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
        ['Settings', bot.settings && Object.keys(bot.settings).length ? JSON.stringify(bot.settings, null, 2) : '—'],
        ['Created', fmtTime(bot.created_at)], ['Updated', fmtTime(bot.updated_at)],
      ];
      $('#config').replaceChildren(...entries.flatMap(([k, v]) => [h('dt', { text: k }), h('dd', null, h('pre', { text: v }))]));
      const ta = $('#config-json');
      if (!ta.dataset.dirty) {
        const editable = {
          name: bot.name, image: bot.image, command: bot.command || [], env: bot.env,
          ports: bot.ports, limits: bot.limits, settings: bot.settings,
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

    function render() {
      renderState();
      renderConfig();
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
          if (!gone) for (const b of $$('[data-action]')) b.disabled = false;
        }
      });
    }

    // ---- edit configuration

    $('#config-json').addEventListener('input', (e) => { e.target.dataset.dirty = '1'; });
    $('#config-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      const out = $('#config-errors');
      out.hidden = true;
      out.replaceChildren();
      let patch;
      try {
        patch = JSON.parse($('#config-json').value);
      } catch (err) {
        out.append(h('p', { text: `Not valid JSON: ${err.message}` }));
        out.hidden = false;
        return;
      }
      patch.apply = $('#config-apply').checked;
      try {
        bot = await api('PATCH', base, patch);
        delete $('#config-json').dataset.dirty;
        render();
        notify(patch.apply ? 'Configuration saved and applied' : 'Configuration saved; apply it to take effect', 'ok');
      } catch (err) {
        const msgs = err.fields ? Object.entries(err.fields).flatMap(([f, ms]) => ms.map((m) => `${f}: ${m}`)) : [err.message];
        out.replaceChildren(...msgs.map((m) => h('p', { text: m })));
        out.hidden = false;
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

    function drawChart(svg, points, max, fmt, limitLine) {
      const W = 600; const H = 140; const L = 56; const R = 8; const T = 8; const B = 20;
      const now = Date.now();
      const span = 10 * 60 * 1000;
      const t0 = now - span;
      const x = (t) => L + ((t - t0) / span) * (W - L - R);
      const y = (v) => T + (1 - Math.min(v, max) / max) * (H - T - B);
      const kids = [];
      for (const f of [0, 0.5, 1]) {
        kids.push(s('line', { class: 'grid', x1: L, x2: W - R, y1: y(max * f), y2: y(max * f) }));
        kids.push(s('text', { class: 'axis', x: L - 6, y: y(max * f) + 4, 'text-anchor': 'end' }, fmt(max * f)));
      }
      kids.push(s('text', { class: 'axis', x: L, y: H - 4 }, '10 min ago'));
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
        kids.push(s('text', { class: 'axis', x: (W + L) / 2, y: H / 2, 'text-anchor': 'middle' }, 'no samples in the last 10 minutes'));
      }
      svg.replaceChildren(...kids);
    }

    function renderStats() {
      const pts = history.filter((p) => p.read).map((p) => ({ ...p, t: new Date(p.read).getTime() }));
      const last = history[history.length - 1];
      const limit = memoryLimit(bot, last) || Math.max(1, ...history.map((p) => p.memory_bytes));
      const cpuLimit = bot && bot.limits && bot.limits.cpus ? bot.limits.cpus * 100 : null;
      const cpuMax = Math.max(cpuLimit || 100, ...pts.map((p) => p.cpu_percent * 1.1));
      drawChart($('#chart-cpu'), pts.map((p) => ({ t: p.t, v: p.cpu_percent })), cpuMax, (v) => `${Math.round(v)} %`, cpuLimit);
      drawChart($('#chart-mem'), pts.map((p) => ({ t: p.t, v: p.memory_bytes })), limit, fmtBytes, null);
      const summary = $('#stats-summary');
      if (last) {
        summary.textContent = `Now: CPU ${fmtPercent(last.cpu_percent)}, memory ${fmtBytes(last.memory_bytes)} of ${fmtBytes(limit)}, ${last.pids} process${last.pids === 1 ? '' : 'es'}.`;
        $('#chart-cpu').setAttribute('aria-label', `CPU use over the last 10 minutes; now ${fmtPercent(last.cpu_percent)}`);
        $('#chart-mem').setAttribute('aria-label', `Memory use over the last 10 minutes; now ${fmtBytes(last.memory_bytes)} of ${fmtBytes(limit)}`);
      }
    }

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
    load().then(() => { loadStats(); loadLogs(); });
  }

  // ================================================================ admin page

  function adminPage() {
    async function loadOrphans() {
      const box = $('#orphans');
      try {
        const o = await api('GET', '/api/admin/orphans');
        const groups = [['Containers', o.containers], ['Secrets directories', o.secrets], ['Workspace directories', o.workspaces]];
        box.replaceChildren(o.total === 0
          ? h('p', { class: 'muted', text: 'Nothing to clean up.' })
          : h('dl', { class: 'config' }, groups.flatMap(([label, items]) => [
            h('dt', { text: `${label} (${items.length})` }),
            h('dd', null, items.length ? h('ul', null, items.map((i) => h('li', null, h('code', { text: i })))) : '—')])));
        $('#cleanup').disabled = o.total === 0;
      } catch (e) {
        box.replaceChildren(h('p', { class: 'error', text: `Could not look for orphans: ${e.message}` }));
      }
    }

    $('#orphans-refresh').addEventListener('click', loadOrphans);
    $('#cleanup').addEventListener('click', async () => {
      if (!await confirmAction('Clean up orphans?', 'Every listed container and directory is removed for good.', 'Clean up')) return;
      try {
        const r = await api('POST', '/api/admin/cleanup');
        notify(`Removed ${r.total} orphan(s)`, 'ok');
      } catch (e) {
        notify(`Cleanup failed: ${e.message}`, 'error');
      }
      loadOrphans();
    });

    async function loadTokens() {
      try {
        const { tokens } = await api('GET', '/api/tokens');
        $('#token-rows').replaceChildren(...tokens.map((t) => h('tr', { 'data-token-id': t.id },
          h('td', { text: t.name }), h('td', null, h('code', { text: t.id })),
          h('td', { text: fmtTime(t.created_at) }), h('td', { text: t.last_used_at ? fmtTime(t.last_used_at) : 'never' }),
          h('td', null, h('button', { type: 'button', class: 'danger', text: 'Revoke', 'aria-label': `Revoke token ${t.name}`, onclick: async () => {
            if (!await confirmAction(`Revoke ${t.name}?`, 'Scripts using this token will be refused from now on.', 'Revoke')) return;
            try {
              await api('DELETE', `/api/tokens/${enc(t.id)}`);
              notify(`Token ${t.name} revoked`, 'ok');
            } catch (e) { notify(`Could not revoke: ${e.message}`, 'error'); }
            loadTokens();
          } })))));
        $('#tokens-empty').hidden = tokens.length > 0;
      } catch (e) {
        notify(`Could not list tokens: ${e.message}`, 'error');
      }
    }

    $('#token-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      const form = e.target;
      clearErrors(form);
      try {
        const t = await api('POST', '/api/tokens', { name: $('#token-name').value });
        $('#token-name').value = '';
        $('#token-value').value = t.token;
        $('#token-created').hidden = false;
        $('#token-value').focus();
        $('#token-value').select();
        loadTokens();
      } catch (err) {
        const fields = err.fields ? { 'token.name': err.fields.name || Object.values(err.fields).flat() } : { 'token.name': [err.message] };
        showErrors(form, fields);
      }
    });
    $('#token-copy').addEventListener('click', async () => {
      const v = $('#token-value');
      try {
        await navigator.clipboard.writeText(v.value);
        notify('Token copied', 'ok');
      } catch (e) {
        v.select();
        notify('Select the token and copy it (Ctrl+C)', 'info');
      }
    });
    $('#token-dismiss').addEventListener('click', () => {
      $('#token-value').value = '';
      $('#token-created').hidden = true;
      $('#token-name').focus();
    });

    subscribeEvents((ev) => { if (ev.kind === 'deleted' || ev.kind === 'created') loadOrphans(); }, loadOrphans);
    loadOrphans();
    loadTokens();
  }

  // ================================================================ start

  const pages = { fleet: fleetPage, 'new-bot': newBotPage, bot: botPage, admin: adminPage };
  const start = () => {
    const page = pages[document.body.dataset.page];
    if (page) page();
    // Pages that follow no stream have nothing to say about liveness.
    if (!subscribed && $('#live')) $('#live').hidden = true;
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
