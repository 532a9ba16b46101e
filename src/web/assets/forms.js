// Field errors: the server answers a bad request with `fields` ({"path": ["message", ...]},
// paths like `env.FOO` or `ports[1].container`); the pages' controls carry the same paths
// (`data-error-for` on their error slots), so messages land next to what they are about.

import { $, $$, h, cssEscape } from './common.js';

export function clearErrors(root) {
  for (const slot of $$('[data-error-for]', root)) { slot.textContent = ''; slot.hidden = true; }
  for (const el of $$('[aria-invalid]', root)) el.removeAttribute('aria-invalid');
}

/** Readable rest of a field path below the slot that shows it (`[0].host` → `line 1: host`). */
function restLabel(rest) {
  return rest
    .replace(/^\.?\[(\d+)\]\.?/, (m, i) => `line ${Number(i) + 1}${m.endsWith('.') ? ', ' : ''}`)
    .replace(/^\./, '');
}

function parentPath(p) {
  const i = Math.max(p.lastIndexOf('.'), p.lastIndexOf('['));
  return i > 0 ? p.slice(0, i) : '';
}

/**
 * Shows the server's `fields` next to the inputs they name: the slot
 * `[data-error-for=path]`, else the nearest enclosing path's slot (`env.FOO` → `env`) with
 * the rest of the path prefixed. Returns the messages that found no slot; `placed`, if
 * given, receives {text, target} for each one shown, for an error summary.
 */
export function showErrors(root, fields, resolve, placed) {
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
    // A slot may say which input it is about and how to name it (`data-target`,
    // `data-label`), where several inputs share it.
    const input = slot.dataset.target ? $(`#${cssEscape(slot.dataset.target)}`, root)
      : $(`[aria-describedby~="${slot.id}"]`, root);
    if (input) input.setAttribute('aria-invalid', 'true');
    if (placed) {
      const target = input || slot;
      const label = input && $(`label[for="${cssEscape(input.id)}"]`, root);
      const name = slot.dataset.label || (label ? label.textContent : path);
      for (const m of messages) placed.push({ text: `${name}${rest ? ` (${rest})` : ''}: ${m}`, target });
    }
  }
  return unplaced;
}
