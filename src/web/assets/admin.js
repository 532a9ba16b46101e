// The admin page (/admin): orphans (list and clean up) and API tokens (create, shown once;
// revoke).

import { $, h, enc, api, notify, confirmAction, fmtTime, subscribeEvents, startPage } from './common.js';
import { clearErrors, showErrors } from './forms.js';

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

startPage(adminPage);
