// What the LLM pages share, and the bot page's LLM section (GET /api/bots/{id}/usage):
// this month's tokens and cost against the bot's limits, and the providers it reaches
// through the proxy.

import { $, enc, api } from './common.js';

/** A cost in the price tables' unit: enough digits for a fraction of a cent. */
export function fmtCost(c) {
  return c === null || c === undefined ? '—' : c.toFixed(c < 1 ? 4 : 2);
}

const limit = (v, fmt = String) => (v === null || v === undefined ? 'no limit' : `limit ${fmt(v)}`);

/** Fills `#llm-usage` for bot `id`. */
export async function showBotUsage(id) {
  const box = $('#llm-usage');
  if (!box) return;
  try {
    const u = await api('GET', `/api/bots/${enc(id)}/usage`);
    const via = u.providers.length ? `through the proxy to ${u.providers.join(', ')}` : 'no provider through the proxy';
    box.textContent = `${via}. Since ${u.since}: ${u.totals.requests} requests, ${u.totals.input_tokens + u.totals.output_tokens} tokens, cost ${fmtCost(u.totals.cost)}. `
      + `Today ${u.current.tokens_today} tokens (${limit(u.limits.llm_tokens_per_day)}); this month ${fmtCost(u.current.cost_this_month)} (${limit(u.limits.llm_cost_per_month, fmtCost)}); `
      + `this minute ${u.current.requests_this_minute} requests (${limit(u.limits.llm_requests_per_minute)}).`;
  } catch (e) {
    box.textContent = `Could not load LLM usage: ${e.message}`;
  }
}
