// The usage page (/usage): the fleet's LLM tokens, requests and cost per bot and per day,
// from a day on (the 1st of the month by default), from GET /api/usage.

import { $, h, enc, api, notify, subscribeEvents, startPage } from './common.js';
import { fmtCost } from './llm.js';

function usagePage() {
  const since = $('#usage-since');
  const now = new Date();
  since.value = `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, '0')}-01`;

  const cells = (t) => [h('td', { text: String(t.requests) }), h('td', { text: String(t.input_tokens) }),
    h('td', { text: String(t.output_tokens) }), h('td', { text: fmtCost(t.cost) })];

  async function load() {
    try {
      const r = await api('GET', `/api/usage?since=${enc(since.value)}`);
      $('#usage-totals').textContent = `Since ${r.since}: ${r.totals.requests} requests, ${r.totals.input_tokens} input and ${r.totals.output_tokens} output tokens, cost ${fmtCost(r.totals.cost)}.`;
      $('#usage-bot-rows').replaceChildren(...r.bots.map((b) => h('tr', { 'data-bot': b.bot },
        h('td', null, h('a', { href: `/bots/${enc(b.bot)}`, text: b.bot })), ...cells(b))));
      $('#usage-day-rows').replaceChildren(...r.rows.map((row) => h('tr', null,
        h('td', { text: row.day }), h('td', { text: row.bot }), h('td', { text: row.provider }),
        h('td', null, h('code', { text: row.model })), ...cells(row))));
      $('#usage-empty').hidden = r.bots.length > 0;
    } catch (e) {
      notify(`Could not load usage: ${e.message}`, 'error');
    }
  }

  since.addEventListener('change', load);
  subscribeEvents((ev) => { if (ev.kind === 'budget_exceeded') load(); }, load);
  load();
}

startPage(usagePage);
