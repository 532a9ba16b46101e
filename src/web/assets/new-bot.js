// The create form (/bots/new): reads the form into a create request, shows the server's
// validation messages next to the fields and in a summary, and proposes the secrets an
// openclaw bot's settings need.

import { $, $$, h, enc, cssEscape, api, startPage } from './common.js';
import { clearErrors, showErrors } from './forms.js';

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

  /**
   * The secrets the openclaw settings need: the provider's key (`data-secret` of its option in
   * the server's list; the server refuses providers it does not list) and the channels'.
   */
  function suggestSecrets() {
    if (template() !== 'openclaw') return;
    const names = [];
    const provider = value('settings.provider').toLowerCase();
    const known = provider && $(`#providers option[value="${cssEscape(provider)}"]`);
    if (known && known.dataset.secret) names.push(known.dataset.secret);
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
      // An address has dots or brackets: `18080:8080` is host port 18080, not an address.
      const m = /^(?:(\[[0-9a-fA-F:]+\]|\d+\.[0-9.]+):)?(?:(\d+):)?(\d+)(?:\/(tcp|udp))?$/.exec(l);
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

    const grace = value('stop_timeout_secs');
    if (grace) {
      const n = Number(grace);
      if (!Number.isInteger(n) || n < 1) problem('stop_timeout_secs', 'must be a whole number of seconds');
      else body.stop_timeout_secs = n;
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

  /** Puts a value of the wrong type at `path` (`limits.memory_mb`, `secrets.NAME`). */
  function poison(body, path) {
    const keys = path.split('.');
    let at = body;
    for (const k of keys.slice(0, -1)) {
      if (typeof at[k] !== 'object' || at[k] === null || Array.isArray(at[k])) at[k] = {};
      at = at[k];
    }
    // Secret values are strings: a number is wrong there; everything else the form reads is
    // a number, a list or an object, where a string is wrong.
    at[keys[keys.length - 1]] = keys[0] === 'secrets' && keys.length > 1 ? 0 : '(unreadable)';
  }

  /** The server's problems, with the form's own message where it has one for a field. */
  function mergeProblems(server, local) {
    const related = (a, b) => a === b || a.startsWith(`${b}.`) || a.startsWith(`${b}[`)
      || b.startsWith(`${a}.`) || b.startsWith(`${a}[`);
    const merged = {};
    for (const [path, messages] of Object.entries(server)) {
      if (!Object.keys(local).some((l) => related(path, l))) merged[path] = messages;
    }
    return Object.assign(merged, local);
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
      // What is missing is the secret's value (its name is there): say so, and lead there.
      slot.dataset.label = `Value of ${name}`;
      slot.dataset.target = $('.secret-value', r).id;
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
    const local = Object.keys(problems).length > 0;
    // What the form cannot read is still sent, as a value of the wrong type that the server
    // refuses at its field: its answer then has every other problem too, all at once, and
    // the bot is not created.
    if (local) for (const path of Object.keys(problems)) poison(body, path);
    const submit = $('#create-submit');
    submit.disabled = true;
    submit.textContent = body.start ? 'Creating and starting…' : 'Creating…';
    try {
      const bot = await api('POST', '/api/bots', body);
      location.assign(`/bots/${enc(bot.id)}`);
    } catch (err) {
      submit.disabled = false;
      submit.textContent = 'Create bot';
      if (err.fields) showProblems(local ? mergeProblems(err.fields, problems) : err.fields);
      else if (local) showProblems(problems);
      else showSummary([], [err.message]);
    }
  });

  for (const r of $$('input[name="template"]', form)) r.addEventListener('change', onTemplate);
  field('settings.provider').addEventListener('change', suggestSecrets);
  for (const b of $$('input[name="channel"]', form)) b.addEventListener('change', suggestSecrets);
  $('#add-secret').addEventListener('click', () => $('.secret-name', addSecretRow()).focus());
  onTemplate();
}

startPage(newBotPage);
