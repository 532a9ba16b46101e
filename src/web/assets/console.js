// A bot's console (/bots/{id}/console): xterm.js (vendored, see vendor/README.md) over the
// exec WebSocket, GET /api/bots/{id}/exec/ws?cmd=...&tty=1. Keys go out as binary frames,
// the terminal's output comes back as binary frames; resizes go out and the exit code comes
// back as small JSON text frames. The browser cannot set headers on a WebSocket: the session
// cookie authenticates it and the page's CSRF token rides in the query. Connect is offered
// only while the bot runs, and the page says why when it does not.

import { $, enc, api, STATE_LABEL, subscribeEvents, startPage } from './common.js';
import { Terminal } from './xterm.mjs';
import { FitAddon } from './addon-fit.mjs';

const CSRF = ($('meta[name="csrf-token"]') || {}).content || '';
const encoder = new TextEncoder();

function cssVar(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

/** The command field as exec arguments: split at spaces, empty parts dropped. */
function commandArgs() {
  return $('#console-cmd').value.trim().split(/\s+/).filter(Boolean);
}

function consolePage() {
  const id = document.body.dataset.botId;
  let bot = null;
  let ws = null;

  const term = new Terminal({
    cursorBlink: true,
    fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace',
    fontSize: 14,
    scrollback: 5000,
    theme: {
      background: cssVar('--log-bg', '#0f1419'),
      foreground: cssVar('--log-text', '#d8dee9'),
    },
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open($('#terminal'));
  fit.fit();
  // For tests and the curious: the terminal object of this page.
  window.botmakerConsole = term;

  const status = (text, kind) => {
    const el = $('#console-status');
    el.textContent = text;
    el.dataset.kind = kind || 'info';
  };

  function running() {
    return bot && bot.state === 'running';
  }

  /** Buttons by state: Connect only for a running bot without a session. */
  function renderState() {
    if (bot) {
      $('#bot-name').textContent = bot.name || bot.id;
      $('#bot-light').className = `light state-${bot.state}`;
      const badge = $('#bot-state');
      badge.textContent = STATE_LABEL[bot.state] || bot.state;
      badge.dataset.state = bot.state;
    }
    const open = Boolean(ws);
    $('#console-connect').disabled = open || !running();
    $('#console-disconnect').disabled = !open;
    $('#console-cmd').disabled = open;
    const reason = $('#console-reason');
    if (!bot) {
      reason.textContent = 'The bot could not be read; the console is unavailable.';
    } else if (!running()) {
      reason.textContent = `The console needs a running bot, and ${bot.id} is ${STATE_LABEL[bot.state] || bot.state}. Start it on its Overview page.`;
    } else {
      reason.textContent = '';
    }
    reason.hidden = !reason.textContent;
  }

  async function load() {
    try {
      bot = await api('GET', `/api/bots/${enc(id)}`);
    } catch (e) {
      bot = null;
      status(e.status === 404 ? 'This bot has been deleted.' : `Could not read the bot: ${e.message}`, 'error');
    }
    renderState();
  }

  function disconnect() {
    if (ws) ws.close(1000);
  }

  function connect() {
    const args = commandArgs();
    if (!args.length) {
      status('Enter a command to run, for example /bin/sh.', 'error');
      $('#console-cmd').focus();
      return;
    }
    fit.fit();
    const q = new URLSearchParams();
    for (const a of args) q.append('cmd', a);
    q.set('tty', '1');
    q.set('cols', String(term.cols));
    q.set('rows', String(term.rows));
    q.set('csrf', CSRF);
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(`${proto}//${location.host}/api/bots/${enc(id)}/exec/ws?${q}`);
    socket.binaryType = 'arraybuffer';
    ws = socket;
    let opened = false;
    let ended = false;
    term.reset();
    status(`Connecting: ${args.join(' ')}…`);
    renderState();

    socket.addEventListener('open', () => {
      opened = true;
      status(`Connected: ${args.join(' ')}`, 'ok');
      term.focus();
    });
    socket.addEventListener('message', (e) => {
      if (typeof e.data !== 'string') {
        term.write(new Uint8Array(e.data));
        return;
      }
      let msg = null;
      try { msg = JSON.parse(e.data); } catch (err) { return; }
      if (msg.type === 'exit') {
        ended = true;
        status(msg.code === null ? 'The command ended.' : `The command exited with code ${msg.code}.`, msg.code === 0 ? 'ok' : 'info');
      } else if (msg.type === 'error') {
        ended = true;
        status(msg.code === 'UNAUTHORIZED' ? 'Your session ended: log in again to reconnect.' : `The session ended: ${msg.error}`, 'error');
      }
    });
    socket.addEventListener('close', () => {
      if (ws === socket) ws = null;
      if (!opened) {
        // A refused handshake shows no status to scripts: ask the API why.
        status('Could not connect: the bot may have stopped, the command may be invalid, or your session ended.', 'error');
        load();
      } else if (!ended) {
        status('Disconnected.');
      }
      renderState();
    });
  }

  term.onData((data) => { if (ws && ws.readyState === WebSocket.OPEN) ws.send(encoder.encode(data)); });
  // Mouse reports and other non-UTF-8 input arrive as "binary strings": one byte per char.
  term.onBinary((data) => {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff));
  });
  term.onResize(({ cols, rows }) => {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'resize', cols, rows }));
  });
  window.addEventListener('resize', () => fit.fit());
  window.addEventListener('pagehide', disconnect);

  $('#console-form').addEventListener('submit', (e) => {
    e.preventDefault();
    if (!ws && running()) connect();
  });
  $('#console-disconnect').addEventListener('click', disconnect);

  subscribeEvents((ev) => {
    if (ev.id !== id) return;
    if (ev.kind === 'deleted') {
      bot = null;
      status('This bot has been deleted.', 'error');
      renderState();
      return;
    }
    if (ev.kind === 'state' && ev.observed && bot) {
      Object.assign(bot, ev.observed);
      renderState();
    } else {
      load();
    }
  }, load);
  load();
}

startPage(consolePage);
