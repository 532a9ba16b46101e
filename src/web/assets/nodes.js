// The nodes page (/nodes): each node (state, availability, role, memory) with the bots it
// runs, linked to their pages; refreshed on every bot event and after a resync.

import { $, h, enc, api, fmtBytes, subscribeEvents, startPage } from './common.js';

/** The node a bot runs on: its `node` on Swarm; on the Docker backend, the one engine. */
function nodeOf(bot, nodes) {
  return bot.node ?? (nodes.length === 1 ? nodes[0].name : null);
}

function botLink(b) {
  return h('li', { 'data-id': b.id }, [h('span', { class: `light state-${b.state}`, 'aria-hidden': 'true' }),
    ' ', h('a', { href: `/bots/${enc(b.id)}`, text: b.name }), ' ', h('span', { class: 'state', text: b.state })]);
}

function nodesPage() {
  async function load() {
    try {
      const [{ nodes }, { bots }] = await Promise.all([api('GET', '/api/nodes'), api('GET', '/api/bots')]);
      $('#node-rows').replaceChildren(...nodes.map((n) => {
        const here = bots.filter((b) => nodeOf(b, nodes) === n.name);
        return h('tr', { 'data-node': n.name }, [
          h('th', { scope: 'row', text: n.name }), h('td', { text: n.role }),
          h('td', { text: n.state }),
          h('td', { text: n.availability }), h('td', { text: fmtBytes(n.memory_bytes) }),
          h('td', null, here.length
            ? h('ul', { class: 'bots-on-node', 'aria-label': `Bots on ${n.name}` }, here.map(botLink))
            : h('span', { class: 'muted', text: 'none' }))]);
      }));
      $('#nodes-empty').hidden = nodes.length > 0;
      $('#nodes-error').hidden = true;
    } catch (e) {
      $('#nodes-error').textContent = `Could not list the nodes: ${e.message}`;
      $('#nodes-error').hidden = false;
    }
  }

  // Events come in bursts (a fleet start, a node down): one reload per burst.
  let pending = null;
  const soon = () => { if (!pending) pending = setTimeout(() => { pending = null; load(); }, 300); };
  subscribeEvents(soon, soon);
  load();
}

startPage(nodesPage);
