// The audit page (/audit): GET /api/audit, newest first, filtered by bot and action; "Older
// entries" follows the answer's next_before cursor.

import { $, h, enc, api, notify, startPage } from './common.js';

function auditPage() {
  const rows = $('#audit-rows');
  const older = $('#audit-older');
  let before = null;

  function query() {
    const q = new URLSearchParams();
    const bot = $('#audit-bot').value.trim();
    const action = $('#audit-action').value;
    if (bot) q.set('bot', bot);
    if (action) q.set('action', action);
    q.set('limit', '100');
    if (before !== null) q.set('before', String(before));
    return q.toString();
  }

  function row(e) {
    const bot = e.bot ? h('a', { href: `/bots/${enc(e.bot)}`, text: e.bot }) : h('span', { text: '–' });
    return h('tr', { 'data-seq': String(e.seq), 'data-action': e.action },
      h('td', { text: e.at.replace('T', ' ').replace(/\.\d+Z$/, 'Z') }),
      h('td', { text: `${e.actor_kind}: ${e.actor}` }),
      h('td', null, h('code', { text: e.action })),
      h('td', null, bot),
      h('td', { text: e.target ?? '–' }),
      h('td', { class: e.outcome === 'ok' ? 'ok' : 'error', text: e.outcome }),
      h('td', { text: e.client ?? '–' }));
  }

  async function load(append) {
    if (!append) before = null;
    try {
      const page = await api('GET', `/api/audit?${query()}`);
      const made = page.entries.map(row);
      if (append) rows.append(...made); else rows.replaceChildren(...made);
      before = page.next_before ?? null;
      older.hidden = before === null;
      $('#audit-empty').hidden = rows.children.length > 0;
    } catch (e) {
      notify(`Could not load the audit log: ${e.message}`, 'error');
    }
  }

  $('#audit-filters').addEventListener('submit', (ev) => { ev.preventDefault(); load(false); });
  $('#audit-action').addEventListener('change', () => load(false));
  older.addEventListener('click', () => load(true));
  load(false);
}

startPage(auditPage);
