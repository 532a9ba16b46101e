// The alerts page (/alerts): notification channels (never a secret), adding or changing one in
// the same form (the secret fields are write-only, cleared after a save; empty on a change, the
// stored ones stay), sending a test, recent deliveries, removal.

import { $, h, api, notify, confirmAction, fmtTime, startPage } from './common.js';
import { clearErrors, showErrors } from './forms.js';

function alertsPage() {
  // The channel being changed, or null when the form adds one.
  let editing = null;

  async function load() {
    try {
      const { channels } = await api('GET', '/api/notifications');
      $('#channel-rows').replaceChildren(...channels.map((c) => {
        const name = c.name ?? '(--alert-webhook)';
        return h('tr', { 'data-channel': String(c.id) },
          h('td', { text: name }),
          h('td', { text: c.kind }),
          h('td', null, h('code', { text: c.kind === 'telegram' ? `${c.url} → ${c.chat_id}` : c.url })),
          h('td', { text: c.all_events ? 'all' : c.events.join(', ') }),
          h('td', { text: c.signed ? 'yes' : 'no' }),
          h('td', null,
            h('button', { type: 'button', text: 'Test', 'aria-label': `Send a test to ${name}`, onclick: () => test(c, name) }),
            ' ',
            h('button', { type: 'button', text: 'Deliveries', 'aria-label': `Deliveries of ${name}`, onclick: () => deliveries(c, name) }),
            ' ',
            // The --alert-webhook channels are the flag's to change.
            c.name === null ? '' : h('button', { type: 'button', text: 'Edit', 'aria-label': `Edit ${name}`, onclick: () => startEdit(c) }),
            c.name === null ? '' : ' ',
            h('button', { type: 'button', class: 'danger', text: 'Remove', 'aria-label': `Remove ${name}`, onclick: () => remove(c, name) })));
      }));
      $('#channels-empty').hidden = channels.length > 0;
    } catch (e) {
      notify(`Could not list channels: ${e.message}`, 'error');
    }
  }

  async function test(c, name) {
    try {
      const d = await api('POST', `/api/notifications/${c.id}/test`);
      if (d.result === 'ok') notify(`Test delivered to ${name}`, 'ok');
      else notify(`Test to ${name} failed: ${d.error ?? 'no reason given'}`, 'error');
    } catch (e) { notify(`Could not test: ${e.message}`, 'error'); }
    deliveries(c, name);
  }

  async function deliveries(c, name) {
    try {
      const { deliveries: list } = await api('GET', `/api/notifications/${c.id}/deliveries?limit=50`);
      $('#h-deliveries').textContent = `Recent deliveries to ${name}`;
      $('#delivery-rows').replaceChildren(...list.map((d) => h('tr', { 'data-result': d.result },
        h('td', { text: fmtTime(d.at) }),
        h('td', { text: d.event }),
        h('td', { text: d.bot_id ?? '—' }),
        h('td', { text: String(d.attempt) }),
        h('td', { text: d.http_status ? `${d.result} (${d.http_status})` : d.result }),
        h('td', { text: d.error ?? '' }))));
      $('#deliveries-card').hidden = false;
    } catch (e) { notify(`Could not list deliveries: ${e.message}`, 'error'); }
  }

  async function remove(c, name) {
    const ok = await confirmAction(`Remove ${name}?`, 'Its secrets and delivery history are deleted; it gets no more alerts.', 'Remove');
    if (!ok) return;
    try {
      await api('DELETE', `/api/notifications/${c.id}`);
      notify(`Channel ${name} removed`, 'ok');
      $('#deliveries-card').hidden = true;
    } catch (e) { notify(`Could not remove: ${e.message}`, 'error'); }
    load();
  }

  function startEdit(c) {
    editing = c;
    const form = $('#channel-form');
    clearErrors(form);
    $('#h-channel-form').textContent = `Change ${c.name}`;
    $('#channel-name').value = c.name;
    $('#channel-kind').value = c.kind;
    $('#channel-kind').disabled = true;
    $('#channel-url').value = c.url;
    $('#channel-chat-id').value = c.chat_id ?? '';
    $('#channel-bot-token').value = '';
    $('#channel-bot-token').placeholder = 'unchanged';
    $('#channel-secret').value = '';
    $('#channel-secret').placeholder = c.signed ? 'unchanged' : '';
    $('#channel-unsigned').checked = false;
    $('#channel-unsigned-field').hidden = !(c.kind === 'webhook' && c.signed);
    for (const box of form.querySelectorAll('input[name="events"]')) {
      box.checked = !c.all_events && c.events.includes(box.value);
    }
    $('#channel-submit').textContent = 'Save changes';
    $('#channel-cancel').hidden = false;
    showKindFields();
    $('#channel-name').focus();
  }

  function stopEdit() {
    editing = null;
    const form = $('#channel-form');
    form.reset();
    clearErrors(form);
    $('#h-channel-form').textContent = 'Add a channel';
    $('#channel-kind').disabled = false;
    $('#channel-bot-token').placeholder = '';
    $('#channel-secret').placeholder = '';
    $('#channel-unsigned-field').hidden = true;
    $('#channel-submit').textContent = 'Add channel';
    $('#channel-cancel').hidden = true;
    showKindFields();
  }
  $('#channel-cancel').addEventListener('click', stopEdit);

  // Only what the form changed: the URL shown is cut for Slack and Discord (it is their
  // credential), so an untouched URL field must not be sent back.
  function changes(c, form) {
    const body = {};
    const name = $('#channel-name').value.trim();
    if (name !== c.name) body.name = name;
    const url = $('#channel-url').value.trim();
    if (url !== c.url) body.url = url;
    if (c.kind === 'telegram') {
      const chat = $('#channel-chat-id').value.trim();
      if (chat !== (c.chat_id ?? '')) body.chat_id = chat;
      const token = $('#channel-bot-token').value.trim();
      if (token) body.bot_token = token;
    }
    if (c.kind === 'webhook') {
      const secret = $('#channel-secret').value;
      if ($('#channel-unsigned').checked) body.signing_secret = null;
      else if (secret) body.signing_secret = secret;
    }
    const events = [...form.querySelectorAll('input[name="events"]:checked')].map((i) => i.value);
    if (!events.length && !c.all_events) body.events = null;
    else if (events.length && (c.all_events || [...events].sort().join() !== [...c.events].sort().join())) body.events = events;
    return body;
  }

  function showKindFields() {
    const kind = $('#channel-kind').value;
    for (const f of ['chat_id', 'bot_token']) {
      document.querySelector(`[data-field="${f}"]`).hidden = kind !== 'telegram';
    }
    document.querySelector('[data-field="signing_secret"]').hidden = kind !== 'webhook';
  }
  $('#channel-kind').addEventListener('change', showKindFields);
  showKindFields();

  $('#channel-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const form = e.target;
    clearErrors(form);
    if (editing) {
      const c = editing;
      try {
        await api('PATCH', `/api/notifications/${c.id}`, changes(c, form));
        notify(`Channel ${$('#channel-name').value.trim()} changed`, 'ok');
        stopEdit();
        load();
      } catch (err) {
        const unplaced = showErrors(form, err.fields || { name: [err.message] });
        if (unplaced.length) notify(unplaced.join('; '), 'error');
      }
      return;
    }
    const kind = $('#channel-kind').value;
    const body = { name: $('#channel-name').value.trim(), kind };
    const url = $('#channel-url').value.trim();
    if (url) body.url = url;
    if (kind === 'telegram') {
      body.chat_id = $('#channel-chat-id').value.trim();
      body.bot_token = $('#channel-bot-token').value.trim();
    }
    const secret = $('#channel-secret').value;
    if (kind === 'webhook' && secret) body.signing_secret = secret;
    const events = [...form.querySelectorAll('input[name="events"]:checked')].map((i) => i.value);
    if (events.length) body.events = events;
    try {
      await api('POST', '/api/notifications', body);
      $('#channel-bot-token').value = '';
      $('#channel-secret').value = '';
      notify(`Channel ${body.name} added`, 'ok');
      load();
    } catch (err) {
      const unplaced = showErrors(form, err.fields || { name: [err.message] });
      if (unplaced.length) notify(unplaced.join('; '), 'error');
    }
  });

  load();
}

startPage(alertsPage);
