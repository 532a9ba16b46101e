// botmaker dashboard: what every page's script module shares. No framework, no build step:
// the server renders each page's shell and loads that page's module (fleet.js, bot.js, ...),
// which imports what it needs from here: DOM and formatting helpers, the JSON API (same
// origin, session cookie, X-CSRF-Token on every change), the page furniture (toast, confirm
// dialog, live indicator) and the server's event streams. Text is always set with
// textContent, never parsed as HTML.

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
export const enc = encodeURIComponent;
const CSRF = ($('meta[name="csrf-token"]') || {}).content || '';

// ---------------------------------------------------------------- DOM helpers

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
}

/** Element with attributes (`text` sets textContent, `on*` adds listeners) and children. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
/** SVG element, like h(). */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

export function cssEscape(v) {
  return window.CSS && CSS.escape ? CSS.escape(v) : v.replace(/["\\]/g, '\\$&');
}

// ---------------------------------------------------------------- formatting

export function fmtBytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

export function fmtDuration(secs) {
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

export function fmtTime(iso) {
  if (!iso) return '—';
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? String(iso) : t.toLocaleString();
}

export function fmtPercent(p) {
  if (p === null || p === undefined || Number.isNaN(p)) return '—';
  return `${p >= 10 ? p.toFixed(0) : p.toFixed(1)} %`;
}

// ---------------------------------------------------------------- bots, as every page shows them

export const STATE_LABEL = {
  running: 'running', created: 'created', stopped: 'stopped', error: 'error',
  crash_loop: 'crash loop', missing: 'missing',
};

export function stateLight(state) {
  return h('span', { class: `light state-${state}`, 'aria-hidden': 'true' });
}

export function uptime(bot) {
  if (bot.state !== 'running' || !bot.started_at) return '—';
  return fmtDuration((Date.now() - new Date(bot.started_at).getTime()) / 1000);
}

export function memoryLimit(bot, sample) {
  if (bot && bot.limits && bot.limits.memory_mb) return bot.limits.memory_mb * 1024 * 1024;
  return sample ? sample.memory_limit_bytes : null;
}

// ---------------------------------------------------------------- API

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `request failed (HTTP ${status})`);
    this.status = status;
    this.code = body && body.code;
    this.fields = (body && body.fields) || null;
  }
}

/** Calls the JSON API; resolves to the parsed body, rejects with an ApiError. */
export async function api(method, path, body) {
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
export function notify(message, kind = 'info') {
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
export function confirmAction(title, text, okLabel) {
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

// ---------------------------------------------------------------- event streams

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
  const state = (st) => { if (onState) onState(st); };
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
    // The server ends a stream whose session was logged out, revoked or expired: go to the
    // login page (api() does on a 401) instead of reconnecting.
    es.addEventListener('unauthorized', () => {
      close();
      api('GET', '/api/stats').then(open, open);
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

let subscribed = false;

/**
 * Follows GET /api/events: `bot` events ({id, kind, observed?, at}) and `resync` (missed
 * events: re-read everything). The page's live indicator shows the stream's state.
 */
export function subscribeEvents(onBot, onResync) {
  subscribed = true;
  const bot = (ev) => { if (ev && typeof ev === 'object' && ev.id) onBot(ev); };
  liveStream('/api/events', { bot, resync: () => onResync() }, onResync, setLive);
}

/** Follows /stream/stats: each event is an array of new samples ({id, cpu_percent, ...}). */
export function subscribeStats(onSamples) {
  liveStream('/stream/stats', { stats: (samples) => { if (Array.isArray(samples)) onSamples(samples); } }, () => {});
}

/** Runs a page's code; a page that follows no event stream has nothing to say about liveness. */
export function startPage(init) {
  init();
  if (!subscribed && $('#live')) $('#live').hidden = true;
}
