// The providers page (/providers): where the key proxy listens, the providers (never a key),
// adding or replacing one (the key field is write-only, cleared after a save) and removing one.

import { $, h, enc, api, notify, confirmAction, fmtTime, startPage } from './common.js';
import { clearErrors, showErrors } from './forms.js';

function providersPage() {
  async function load() {
    try {
      const { proxy, providers } = await api('GET', '/api/providers');
      $('#proxy-info').textContent = proxy.enabled
        ? `Bots reach the proxy at ${proxy.url} (listening on ${proxy.listen}). A bot that uses a provider named here gets a virtual key; the provider's key stays in botmaker.`
        : 'The proxy is off: bots hold their providers\' keys themselves (see --llm-proxy-listen).';
      $('#provider-rows').replaceChildren(...providers.map((p) => h('tr', { 'data-provider': p.name },
        h('td', null, h('code', { text: p.name })),
        h('td', { text: p.kind }),
        h('td', null, h('code', { text: p.base_url })),
        h('td', { text: p.has_api_key ? 'set' : 'none' }),
        h('td', { text: String(Object.keys(p.prices).length), title: JSON.stringify(p.prices) }),
        h('td', { text: p.bots.length ? p.bots.join(', ') : '—', title: `changed ${fmtTime(p.updated_at)}` }),
        h('td', null, h('button', { type: 'button', class: 'danger', text: 'Remove', 'aria-label': `Remove provider ${p.name}`, onclick: () => remove(p) })))));
      $('#providers-empty').hidden = providers.length > 0;
    } catch (e) {
      notify(`Could not list providers: ${e.message}`, 'error');
    }
  }

  async function remove(p) {
    const used = p.bots.length > 0;
    const ok = await confirmAction(`Remove ${p.name}?`, used
      ? `Its key is deleted and the virtual keys of ${p.bots.join(', ')} are revoked: their LLM calls fail until they are changed.`
      : 'Its key is deleted from botmaker.', 'Remove');
    if (!ok) return;
    try {
      await api('DELETE', `/api/providers/${enc(p.name)}${used ? '?force=true' : ''}`);
      notify(`Provider ${p.name} removed`, 'ok');
    } catch (e) { notify(`Could not remove: ${e.message}`, 'error'); }
    load();
  }

  $('#provider-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const form = e.target;
    clearErrors(form);
    const body = { name: $('#provider-name').value.trim(), kind: $('#provider-kind').value };
    const url = $('#provider-base-url').value.trim();
    if (url) body.base_url = url;
    const key = $('#provider-key').value;
    if (key) body.api_key = key;
    const prices = $('#provider-prices').value.trim();
    if (prices) {
      try { body.prices = JSON.parse(prices); } catch (err) {
        showErrors(form, { prices: [`not JSON: ${err.message}`] });
        return;
      }
    }
    try {
      await api('POST', '/api/providers', body);
      $('#provider-key').value = '';
      notify(`Provider ${body.name} saved`, 'ok');
      load();
    } catch (err) {
      const unplaced = showErrors(form, err.fields || { name: [err.message] });
      if (unplaced.length) notify(unplaced.join('; '), 'error');
    }
  });

  load();
}

startPage(providersPage);
