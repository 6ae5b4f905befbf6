// app.js: the hark page. It speaks the node's ctl protocol over the WebSocket at /ws (one
// JSON object per message: the hello, answers matched by id, every node event) and shows
// only what the node's `help` lists, so a feature the node lacks has no control here.
// Everything peers say is put in the page as text nodes, never as markup.

import { Plot } from './plot.js';

const $ = (id) => document.getElementById(id);
const STATUS_RANK = { online: 4, busy: 3, away: 2, invisible: 1, offline: 0 };
const TICKS = { sent: ['✓', 'sent'], delivered: ['✓✓', 'delivered'], read: ['✓✓', 'read'],
                failed: ['!', 'not delivered'], expired: ['!', 'expired'] };
// Contact requests are pushed: the asked user's SN tells the node within moments of a
// request (and the asker's of an answer), and the node emits `requests-changed` with
// everything pending, which the page shows as it is. It asks `requests` only when it
// (re)loads its state.
const TICK_RANK = { failed: -1, expired: -1, sent: 1, delivered: 2, read: 3 };

// ---- a little DOM builder: text is always text ------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false)
      continue;
    if (k === 'class')
      el.className = v;
    else if (k.startsWith('on'))
      el.addEventListener(k.slice(2), v);
    else if (k === 'key')
      el.dataset.key = v;
    else
      el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat())
    if (c !== null && c !== undefined && c !== false)
      el.append(c instanceof Node ? c : String(c));
  return el;
}

// Replaces container's children, keeping the keyboard focus on the control with the same
// data-key (lists are redrawn when events come, and a keyboard user must not be thrown out).
function replace(container, children) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.key : undefined;
  container.replaceChildren(...children.filter(Boolean));
  if (key) {
    const again = container.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (again)
      again.focus();
  }
}

function button(label, onclick, extra = {}) {
  return h('button', { type: 'button', onclick, ...extra }, label);
}

function clock(unix) {
  if (!unix)
    return '';
  const d = new Date(unix * 1000);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
               : d.toLocaleString([], { dateStyle: 'short', timeStyle: 'short' });
}

function facts(dl, pairs) {
  replace(dl, pairs.filter(([, v]) => v !== undefined && v !== null && v !== '')
    .flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))]));
}

// ---- the connection ----------------------------------------------------------------------

class NodeLink {
  constructor(onEvent, onUp, onDown) {
    this.onEvent = onEvent;
    this.onUp = onUp;
    this.onDown = onDown;
    this.pending = new Map();
    this.next = 1;
    this.ws = null;
    this.ready = false;
    this.delay = 500;
    this.timer = null;
  }

  connect() {
    clearTimeout(this.timer);
    this.timer = null;
    const url = new URL('/ws', location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onmessage = (m) => this.receive(m.data);
    ws.onclose = () => {
      if (this.ws !== ws)
        return;
      this.ready = false;
      for (const p of this.pending.values())
        p.reject({ code: 'disconnected', message: 'the connection to the node was lost' });
      this.pending.clear();
      const wait = this.delay;
      this.delay = Math.min(this.delay * 2, 10000);
      this.timer = setTimeout(() => this.connect(), wait + Math.random() * 250);
      this.onDown(wait);
    };
  }

  retryNow() {
    if (!this.ready)
      this.connect();
  }

  receive(data) {
    let m;
    try {
      m = JSON.parse(data);
    } catch {
      return;
    }
    if (m.event === 'hello' && !('id' in m)) {
      this.ready = true;
      this.delay = 500;
      this.onUp(m);
    } else if ('event' in m && !('id' in m)) {
      this.onEvent(m);
    } else if (m.id !== null && this.pending.has(m.id)) {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.ok)
        p.resolve(m.result || {});
      else
        p.reject(m.error || { code: 'failed', message: 'the node gave no reason' });
    } else if (m.ok === false) {
      alertError(m.error.message || m.error.code);
    }
  }

  request(command, args) {
    return new Promise((resolve, reject) => {
      if (!this.ready)
        return reject({ code: 'disconnected', message: 'not connected to the node' });
      const id = `p${this.next++}`;
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ id, command, args: args || {} }));
    });
  }
}

// ---- state -------------------------------------------------------------------------------

const S = {
  commands: new Set(),
  nodeState: null,
  user: null,
  buddies: [],
  requests: { incoming: [], outgoing: [], blocked: [] },
  conversations: [],
  open: null, // { conversation, with, title, group }
  messages: [],
  calls: new Map(), // call_id -> latest call event or answer, plus `muted`, `dtmf`
  plots: new Map(), // call_id -> { plots, last, timer }
  conferences: new Map(), // conference_id -> latest roster event
  speakers: new Map(), // conference_id -> the user talking now (null: nobody)
  inviteDrafts: new Map(), // conference_id -> the name typed in its invite field
  inviteErrors: new Map(), // conference_id -> the node's words refusing the last invite
  typingTimer: null,
  typingSent: 0,
  view: 'contacts',
};

const link = new NodeLink(onEvent, onUp, onDown);
const has = (command) => S.commands.has(command);

// Runs a command; its error is shown in target (an element) or as a page alert.
async function run(command, args, target) {
  if (target)
    target.textContent = '';
  try {
    return await link.request(command, args);
  } catch (e) {
    const text = e.message || e.code || String(e);
    if (target)
      target.textContent = text;
    else
      alertError(`${command}: ${text}`);
    return null;
  }
}

function alertError(text) {
  const box = $('alerts');
  const item = h('div', { class: 'alert' }, h('span', {}, text),
    button('Dismiss', () => item.remove(), { class: 'small', 'aria-label': `Dismiss: ${text}` }));
  box.append(item);
  while (box.children.length > 4)
    box.firstChild.remove();
}

function notice(text) {
  $('link').textContent = text;
}

// ---- connection up and down --------------------------------------------------------------

async function onUp(hello) {
  $('node-name').textContent = hello.node ? `· ${hello.node}` : '';
  $('reconnect').hidden = true;
  notice('Connected to the node.');
  const help = await run('help');
  S.commands = new Set((help?.commands || []).map((c) => c.name));
  for (const el of document.querySelectorAll('[data-needs]'))
    el.hidden = !el.dataset.needs.split(' ').every(has);
  await loadState();
}

function onDown(wait) {
  $('reconnect').hidden = false;
  notice(`Not connected to the node: trying again in ${Math.round(wait / 1000) || 1} s. ` +
         'If it never comes back, open a new link from `hark ctl web-url`.');
}

async function loadState() {
  const st = await run('state');
  if (!st)
    return;
  S.nodeState = st;
  const login = st.login;
  S.user = login?.user || null;
  $('signin').hidden = !!S.user;
  $('app').hidden = !S.user;
  $('me').hidden = !S.user;
  if (login === undefined) {
    $('login-error').textContent = 'This node is not configured to log in (set login.url and login.ca).';
  }
  if (!S.user) {
    // Signed out (here or by the server): nothing of the account stays on the page.
    S.open = null;
    S.messages = [];
    $('conversation').hidden = true;
    document.title = 'hark: sign in';
    return;
  }
  document.title = `hark: ${S.user}`;
  $('me-user').textContent = login.device && login.device !== S.user ? `${S.user} on ${login.device}` : S.user;
  renderMedia();
  await Promise.all([loadBuddies(), loadRequests(), loadConversations(), loadCalls(),
                     loadStatus(), loadNetwork(), loadAccount(), loadRoster()]);
}

// ---- events ------------------------------------------------------------------------------

const debounced = new Map();
function soon(fn, ms = 150) {
  clearTimeout(debounced.get(fn));
  debounced.set(fn, setTimeout(fn, ms));
}

function onEvent(ev) {
  switch (ev.event) {
  case 'logged-in':
  case 'logged-out':
    soon(loadState);
    break;
  case 'buddies-changed':
    soon(loadBuddies);
    break;
  case 'presence-changed':
    presenceChanged(ev);
    break;
  case 'contact-request':
    notice(`${ev.from} asks to be your contact.`);
    break;
  case 'requests-changed':
    showRequests(ev);
    break;
  case 'message':
    messageArrived(ev);
    break;
  case 'message-state':
    messageState(ev);
    break;
  case 'typing':
    typingNote(ev);
    break;
  case 'call':
    callEvent(ev);
    break;
  case 'call-dtmf':
    callDtmf(ev);
    break;
  case 'conference-host':
  case 'conference-roster':
    soon(loadRoster);
    break;
  case 'active-speaker':
    S.speakers.set(ev.conference_id, ev.user);
    renderCalls();
    break;
  case 'conference-invite':
    conferenceInvite(ev);
    break;
  case 'conference-refused':
    alertError(`${ev.host} did not let you in: ${ev.reason}`);
    break;
  case 'overlay-attached':
  case 'overlay-detached':
  case 'overlay-joining':
  case 'overlay-join-failed':
  case 'overlay-role':
  case 'nat-probed':
    soon(loadNetwork, 300);
    break;
  case 'media-settings': {
    const { event, ...media } = ev;
    mediaSettings(media);
    break;
  }
  case 'node-stopping':
    notice('The node is stopping.');
    break;
  }
}

// ---- sign in -----------------------------------------------------------------------------

async function signIn(registerFirst) {
  const form = $('login-form');
  if (!form.reportValidity())
    return;
  const user = $('login-user').value.trim(), password = $('login-password').value;
  const error = $('login-error');
  if (registerFirst && !(await run('register', { user, password }, error)))
    return;
  if (await run('login', { user, password }, error)) {
    $('login-password').value = '';
    await loadState();
  }
}

// ---- status ------------------------------------------------------------------------------

async function loadStatus() {
  if (!has('status'))
    return;
  const r = await run('status');
  if (r)
    $('status-select').value = r.status;
}

// ---- buddies, search, requests -----------------------------------------------------------

async function loadBuddies() {
  const r = await run('buddies');
  if (!r)
    return;
  S.buddies = r.buddies || [];
  for (const b of S.buddies)
    b.deviceMap = new Map((b.devices || []).map((d) => [d.device, d]));
  renderBuddies();
}

function presenceChanged(ev) {
  const b = S.buddies.find((x) => x.name === ev.user);
  if (!b) {
    soon(loadBuddies);
    return;
  }
  b.presence = ev.presence;
  if (!ev.online || ev.status === 'offline')
    b.deviceMap.delete(ev.device);
  else
    b.deviceMap.set(ev.device, { ...(b.deviceMap.get(ev.device) || { device: ev.device }), status: ev.status });
  renderBuddies();
}

function presenceLabel(p) {
  return p === 'invisible' ? 'offline' : (p || 'offline');
}

function renderBuddies() {
  const items = S.buddies.map((b) => {
    const p = presenceLabel(b.presence);
    const devices = [...b.deviceMap.values()].filter((d) => d.status !== 'invisible');
    return h('li', { class: 'buddy' },
      h('div', { class: 'who' },
        h('span', { class: `dot ${p}`, 'aria-hidden': 'true' }),
        h('strong', {}, b.alias && b.alias !== b.name ? `${b.alias} (${b.name})` : b.name),
        h('span', { class: 'presence' }, p)),
      devices.length ? h('ul', { class: 'devices', 'aria-label': `Devices of ${b.name}` },
        devices.map((d) => h('li', {}, `${d.name || `device ${String(d.device).slice(0, 8)}`}: ${d.status}`))) : null,
      h('div', { class: 'row' },
        has('msg') ? button('Message', () => openConversation(`u:${b.name}`), {
          key: `msg:${b.name}`, 'aria-label': `Message ${b.name}` }) : null,
        has('call') ? button('Call', () => dial(b.name), {
          key: `call:${b.name}`, 'aria-label': `Call ${b.name}` }) : null,
        has('buddy-remove') ? button('Remove', () => {
          if (confirm(`Remove ${b.name} from your buddies?`))
            run('buddy-remove', { name: b.name }).then((r) => r && loadBuddies());
        }, { key: `rm:${b.name}`, class: 'secondary', 'aria-label': `Remove ${b.name}` }) : null));
  });
  replace($('buddies'), items);
  $('buddies-empty').hidden = items.length > 0;
}

async function search(ev) {
  ev.preventDefault();
  const name = $('search-name').value.trim();
  const r = await run('search', { name }, $('search-error'));
  const out = $('search-results');
  if (!r) {
    out.replaceChildren();
    return;
  }
  const users = r.prefix ? (r.users || []) : (r.answer === 'unknown' ? [] : [r.query]);
  const heading = h('p', {}, r.prefix ? `${users.length} users start with “${r.query.replace(/\*$/, '')}”`
                                      : `${r.query}: ${r.text || r.answer}`);
  const buddies = new Set(S.buddies.map((b) => b.name));
  replace(out, [heading, h('ul', { class: 'list', 'aria-label': 'Search results' }, users.map((u) =>
    h('li', {}, h('strong', {}, u), buddies.has(u) || u === S.user ? null
      : button('Send contact request', () => request(u), {
        key: `req:${u}`, 'aria-label': `Send a contact request to ${u}` }))))]);
}

async function request(name, message) {
  const args = { name };
  if (message)
    args.message = message;
  const r = await run('buddy-add', args, $('add-error'));
  if (r) {
    notice(`Contact request sent to ${name}.`);
    showRequests(r);
  }
  return r;
}

async function loadRequests() {
  if (!has('requests'))
    return;
  const r = await run('requests');
  if (r)
    showRequests(r);
}

function showRequests(r) {
  S.requests = { incoming: r.incoming || [], outgoing: r.outgoing || [], blocked: r.blocked || [] };
  const act = (command, name) => async () => {
    const a = await run(command, { name });
    if (a) {
      showRequests(a);
      loadBuddies();
    }
  };
  const items = [
    ...S.requests.incoming.map((q) => h('li', { class: 'request' },
      h('p', {}, h('strong', {}, q.name), ' wants to be your contact',
        q.message ? h('span', { class: 'note' }, `: “${q.message}”`) : null),
      h('div', { class: 'row' },
        button('Accept', act('buddy-accept', q.name), { key: `acc:${q.name}`, 'aria-label': `Accept ${q.name}` }),
        button('Decline', act('buddy-decline', q.name), { key: `dec:${q.name}`, class: 'secondary', 'aria-label': `Decline ${q.name}` }),
        has('block') ? button('Block', act('block', q.name), { key: `blk:${q.name}`, class: 'danger', 'aria-label': `Block ${q.name}` }) : null))),
    ...S.requests.outgoing.map((q) => h('li', { class: 'request' },
      h('p', {}, 'Waiting for ', h('strong', {}, q.name), ' to answer'),
      has('buddy-cancel') ? button('Withdraw', act('buddy-cancel', q.name), {
        key: `can:${q.name}`, class: 'secondary', 'aria-label': `Withdraw the request to ${q.name}` }) : null)),
    ...S.requests.blocked.map((name) => h('li', { class: 'request' },
      h('p', {}, h('strong', {}, name), ' is blocked'),
      has('unblock') ? button('Unblock', act('unblock', name), {
        key: `unb:${name}`, class: 'secondary', 'aria-label': `Unblock ${name}` }) : null)),
  ];
  replace($('requests'), items);
  $('requests-empty').hidden = items.length > 0;
  const waiting = S.requests.incoming.length;
  $('requests-total').hidden = waiting === 0;
  $('requests-total').textContent = waiting ? `${waiting} ${waiting === 1 ? 'request' : 'requests'}` : '';
}

// ---- conversations -----------------------------------------------------------------------

async function loadConversations() {
  if (!has('conversations'))
    return;
  const r = await run('conversations');
  if (!r)
    return;
  S.conversations = r.conversations || [];
  renderConversations();
}

function conversationTarget(conversation) {
  return conversation.startsWith('g:') ? `#${conversation.slice(2)}` : conversation.slice(2);
}

function renderConversations() {
  let total = 0;
  const items = S.conversations.map((c) => {
    const unread = S.open?.conversation === c.conversation ? 0 : c.unread || 0;
    total += unread;
    const label = unread ? `${c.title}, ${unread} unread` : c.title;
    return h('li', {}, h('button', {
      type: 'button', class: 'conversation', key: `conv:${c.conversation}`, 'aria-label': label,
      'aria-current': S.open?.conversation === c.conversation ? 'true' : null,
      onclick: () => openConversation(c.conversation, c.title),
    }, h('strong', {}, c.title), unread ? h('span', { class: 'badge', 'aria-hidden': 'true' }, unread) : null,
    c.last ? h('span', { class: 'last' }, `${c.last.from === S.user ? 'you' : c.last.from}: ${c.last.text}`) : null));
  });
  replace($('conversations'), items);
  $('conversations-empty').hidden = items.length > 0;
  const badge = $('unread-total');
  badge.hidden = total === 0;
  badge.textContent = total ? `${total} unread` : '';
  document.title = `${total ? `(${total}) ` : ''}hark: ${S.user}`; // seen from another tab
}

async function openConversation(conversation, title) {
  const target = conversationTarget(conversation);
  S.open = { conversation, with: target, title: title || target, group: conversation.startsWith('g:') };
  S.messages = [];
  showView('chats', false);
  $('conversation').hidden = false;
  $('conversation-title').textContent = S.open.group ? `Group ${S.open.title}` : `Chat with ${S.open.title}`;
  $('compose-label').textContent = `Message to ${S.open.title}`;
  $('typing-note').textContent = '';
  const actions = [];
  if (!S.open.group && has('call'))
    actions.push(button(`Call ${S.open.title}`, () => dial(target), { class: 'secondary' }));
  if (S.open.group && has('group-leave'))
    actions.push(button('Leave the group', async () => {
      if (await run('group-leave', { group: target })) {
        $('conversation').hidden = true;
        S.open = null;
        loadConversations();
      }
    }, { class: 'secondary' }));
  replace($('conversation-actions'), actions);
  await loadHistory();
  $('compose-text').focus();
}

async function loadHistory() {
  if (!S.open)
    return;
  const open = S.open;
  const r = await run('history', { with: open.with, n: 100 }, $('compose-error'));
  if (!r || S.open !== open)
    return;
  S.messages = r.messages || [];
  renderMessages();
  loadConversations();
}

function tick(states) {
  let best = null;
  for (const s of Object.values(states || {}))
    if (best === null || (TICK_RANK[s] ?? 0) > (TICK_RANK[best] ?? 0))
      best = s;
  if (best === null)
    return h('span', { class: 'tick pending' }, 'sending');
  const [mark, word] = TICKS[best] || ['', best];
  return h('span', { class: `tick ${best}` }, h('span', { 'aria-hidden': 'true' }, mark), ` ${word}`);
}

function renderMessages() {
  const list = $('messages'), box = $('messages-box');
  const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 8;
  replace(list, S.messages.map((m) => {
    const mine = m.from === S.user;
    return h('li', { class: mine ? 'mine' : 'theirs', 'data-id': m.id },
      h('div', { class: 'meta' }, h('strong', {}, mine ? 'You' : m.from), ' ',
        h('time', {}, clock(m.time)), m.after_gap ? ' (arrived late)' : ''),
      h('p', { class: 'text' }, m.text),
      mine ? tick(m.states) : null);
  }));
  if (atEnd)
    box.scrollTop = box.scrollHeight;
}

function messageArrived(ev) {
  if (S.open && S.open.conversation === ev.conversation && S.view === 'chats' && !document.hidden) {
    soon(loadHistory, 50); // history marks them read, and the sender sees its read ticks
    if (ev.from === S.open.with)
      $('typing-note').textContent = '';
  } else {
    soon(loadConversations);
    if (ev.direction === 'in')
      notice(`New message from ${ev.from}.`);
  }
}

function messageState(ev) {
  const m = S.messages.find((x) => x.id === ev.message_id);
  if (!m)
    return;
  m.states = { ...(m.states || {}), [ev.device]: ev.state };
  renderMessages();
}

async function send(ev) {
  ev.preventDefault();
  const area = $('compose-text');
  const text = area.value;
  if (!S.open || !text.trim())
    return;
  const r = await run('msg', { to: S.open.with, text }, $('compose-error'));
  if (!r)
    return;
  area.value = '';
  S.typingSent = 0;
  S.messages.push({ id: r.id, from: S.user, time: Math.floor(Date.now() / 1000), text, direction: 'out',
                    states: {} });
  renderMessages();
  soon(loadConversations);
}

function typed() {
  if (!S.open || S.open.group || !has('typing'))
    return;
  const now = Date.now();
  if (now - S.typingSent > 3000) {
    S.typingSent = now;
    link.request('typing', { to: S.open.with, state: 'on' }).catch(() => {});
  }
}

function typingNote(ev) {
  if (!S.open || S.open.with !== ev.from)
    return;
  clearTimeout(S.typingTimer);
  $('typing-note').textContent = ev.typing ? `${ev.from} is typing…` : '';
  if (ev.typing)
    S.typingTimer = setTimeout(() => ($('typing-note').textContent = ''), 8000);
}

async function createGroup(ev) {
  ev.preventDefault();
  const r = await run('group-create', { name: $('group-name').value.trim(), users: $('group-users').value },
                      $('group-error'));
  if (r) {
    $('group-name').value = $('group-users').value = '';
    await loadConversations();
    if (r.conversation)
      openConversation(r.conversation, r.state?.name);
  }
}

// ---- calls -------------------------------------------------------------------------------

async function dial(user) {
  const r = await run('call', { user }, $('dial-error'));
  if (r) {
    callEvent({ ...r, call_id: r.id });
    notice(`Calling ${user}…`);
  }
}

async function loadCalls() {
  if (!has('calls'))
    return;
  const r = await run('calls');
  if (!r)
    return;
  // The node's list as it is now (calls may have ended while the page was away), with
  // what the page keeps of its own (muted, the keypad open, digits).
  const now = new Map((r.calls || []).map((c) => [c.id, { ...S.calls.get(c.id), ...c, call_id: c.id }]));
  for (const id of S.calls.keys())
    if (!now.has(id))
      stopStats(id);
  S.calls = now;
  for (const c of now.values())
    if (c.state === 'active' || c.state === 'held')
      startStats(c.call_id);
  renderCalls();
  loadCallLog();
}

function callEvent(ev) {
  const id = ev.call_id;
  const before = S.calls.get(id) || {};
  const call = { ...before, ...ev };
  if (ev.state === 'ended') {
    S.calls.delete(id);
    stopStats(id);
    notice(`Call with ${call.peer} ended: ${call.reason || call.outcome || 'hung up'}.`);
    soon(loadCallLog);
  } else {
    S.calls.set(id, call);
    if (ev.state === 'ringing' && ev.direction === 'in' && before.state !== 'ringing')
      notice(`Incoming call from ${call.peer}.`);
    if (ev.state === 'active' && before.state !== 'active' && before.state !== 'held')
      notice(`In a call with ${call.peer}.`);
    if (ev.state === 'active' || ev.state === 'held')
      startStats(id);
  }
  renderCalls();
}

function callDtmf(ev) {
  const call = S.calls.get(ev.call_id);
  if (!call)
    return;
  call.heard = (call.heard || '') + ev.digit;
  renderCalls();
}

const STATE_WORDS = {
  dialing: 'calling…', ringing: 'ringing', connecting: 'connecting…', active: 'in call', held: 'on hold',
};

function callWords(c) {
  if (c.state === 'ringing' && c.direction === 'in')
    return `incoming call${c.peer_device_name ? ` from the device ${c.peer_device_name}` : ''}`;
  if (c.state === 'held')
    return c.local_hold ? 'on hold (you held it)' : `on hold (${c.peer} held it)`;
  return STATE_WORDS[c.state] || c.state;
}

async function callCommand(command, call, args = {}) {
  const r = await run(command, { id: call.call_id, ...args });
  if (r) {
    const known = S.calls.get(call.call_id);
    if (known) {
      if ('muted' in r) {
        known.muted = r.muted;
        known.mutedAt = Date.now();
      }
      if (command === 'dtmf')
        known.sent = (known.sent || '') + args.digits;
      if (r.state && r.state !== 'ended')
        Object.assign(known, { state: r.state, local_hold: r.local_hold, remote_hold: r.remote_hold });
    }
    renderCalls();
  }
  return r;
}

function keypad(call) {
  const keys = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#'];
  // Typing a digit anywhere in the keypad sends it too.
  return h('div', { class: 'keypad', role: 'group', 'aria-label': 'Keypad', onkeydown: (e) => {
    if (keys.includes(e.key) && !e.ctrlKey && !e.altKey && !e.metaKey) {
      e.preventDefault();
      callCommand('dtmf', call, { digits: e.key });
    }
  } },
    keys.map((k) => button(k, () => callCommand('dtmf', call, { digits: k }), {
      key: `key:${call.call_id}:${k}`, 'aria-label': `Send ${k === '*' ? 'star' : k === '#' ? 'pound' : k}` })));
}

function callCard(c) {
  const id = c.call_id;
  const k = (name) => `${name}:${id}`;
  const media = c.state === 'active' || c.state === 'held';
  const controls = [];
  if (c.state === 'ringing' && c.direction === 'in') {
    if (has('answer'))
      controls.push(button('Answer', () => callCommand('answer', c), { key: k('answer'), class: 'go' }));
    if (has('decline'))
      controls.push(button('Decline', () => callCommand('decline', c), { key: k('decline'), class: 'danger' }));
  }
  if (media) {
    if (c.state === 'held' && c.local_hold && has('resume'))
      controls.push(button('Resume', () => callCommand('resume', c), { key: k('hold') }));
    else if (c.state === 'active' && has('hold'))
      controls.push(button('Hold', () => callCommand('hold', c), { key: k('hold') }));
    if (has('mute') && has('unmute'))
      controls.push(button('Mute', () => callCommand(c.muted ? 'unmute' : 'mute', c), {
        key: k('mute'), 'aria-pressed': c.muted ? 'true' : 'false' }));
    if (has('dtmf'))
      controls.push(button('Keypad', () => {
        c.keypad = !c.keypad;
        renderCalls();
      }, { key: k('keypad'), 'aria-expanded': c.keypad ? 'true' : 'false', 'aria-controls': `keypad-${id}` }));
  }
  if (has('hangup') && !(c.state === 'ringing' && c.direction === 'in'))
    controls.push(button('Hang up', () => callCommand('hangup', c), { key: k('hangup'), class: 'danger' }));

  const info = [];
  if (c.codec)
    info.push(`codec ${c.codec}`);
  if (c.path)
    info.push(`path ${c.path}`);
  if (c.setup_ms !== undefined)
    info.push(`set up in ${c.setup_ms} ms`);

  const choices = [];
  if (media && has('codec') && S.nodeState?.media?.codecs?.length)
    choices.push(chooser(c, 'codec', 'Codec', S.nodeState.media.codecs, c.codec));
  if (media && has('path'))
    choices.push(chooser(c, 'path', 'Path', ['any', 'udp', 'tcp', 'relay'], 'any'));

  const plots = S.plots.get(id);
  const conference = [...S.conferences.values()].find((f) => f.call_id === id ||
    (f.legs || []).some((l) => l.id === id));
  return h('article', { class: `call ${c.state}`, 'aria-labelledby': `call-title-${id}` },
    h('h2', { id: `call-title-${id}` }, `${c.direction === 'in' ? 'Call from' : 'Call to'} ${c.peer}`),
    h('p', { class: 'call-state' }, callWords(c)),
    conference ? h('p', {}, conference.hosting ? `${c.peer}'s line into your conference`
                                               : `your line into the conference of ${conference.host}`) : null,
    info.length ? h('p', { class: 'muted' }, info.join(' · ')) : null,
    h('div', { class: 'row controls' }, controls),
    c.keypad && media ? h('div', { id: `keypad-${id}` }, keypad(c),
      c.sent ? h('p', { class: 'muted' }, `Sent: ${c.sent}`) : null) : null,
    c.heard ? h('p', {}, `${c.peer} keyed: ${c.heard}`) : null,
    choices.length ? h('div', { class: 'row' }, choices) : null,
    plots && media ? h('section', { class: 'stats', 'aria-label': `Statistics of the call with ${c.peer}` },
      h('h3', {}, 'Statistics'), h('div', { class: 'plots' }, plots.plots.map((p) => p.figure))) : null);
}

function chooser(call, command, label, options, current) {
  // What the user picked survives the card being drawn again (a call event meanwhile).
  const picked = call.picked?.[command] ?? current;
  const sel = h('select', { id: `${command}-${call.call_id}`, key: `${command}-sel:${call.call_id}`,
    onchange: (e) => (call.picked = { ...call.picked, [command]: e.target.value }) },
  options.map((o) => h('option', { value: o, selected: o === picked ? true : null }, o)));
  return h('div', { class: 'chooser' },
    h('label', { for: sel.id }, label), sel,
    button(`Use this ${label.toLowerCase()}`, () => {
      const args = command === 'codec' ? { name: sel.value } : { kind: sel.value };
      callCommand(command, call, args).then((r) => r && notice(`Asked for ${label.toLowerCase()} ${sel.value}.`));
    }, { key: `${command}-go:${call.call_id}`, class: 'secondary' }));
}

// Two calls or more with one held: `merge` makes them one conference this node hosts.
function mergeBar() {
  const calls = [...S.calls.values()].filter((c) => c.state === 'active' || c.state === 'held');
  if (!has('merge') || calls.length < 2 || !calls.some((c) => c.state === 'held'))
    return null;
  return h('div', { class: 'row' }, button('Merge calls into a conference', () => confCommand('merge', {}), {
    key: 'merge', 'aria-label': `Merge the calls with ${calls.map((c) => c.peer).join(', ')} into a conference` }));
}

function renderCalls() {
  const cards = [mergeBar(), ...[...S.calls.values()].map(callCard)];
  for (const conf of S.conferences.values())
    cards.push(conferenceCard(conf));
  replace($('calls'), cards);
  for (const p of S.plots.values())
    p.plots.forEach((x) => x.draw());
}

// Statistics: polled once a second while the call carries media; bitrates from the
// node's own figures, loss over the last second from the counters' differences.
function startStats(id) {
  if (S.plots.has(id) || !has('stats'))
    return;
  const entry = {
    plots: [new Plot('Round-trip time', 'ms', 1), new Plot('Jitter', 'ms', 1), new Plot('Loss', '%', 1),
            new Plot('Bitrate received', 'kbit/s', 1), new Plot('Jitter buffer', 'ms')],
    last: null,
  };
  S.plots.set(id, entry);
  const tickStats = async () => {
    let st;
    try {
      st = await link.request('stats', { id });
    } catch {
      return;
    }
    const [rtt, jitter, loss, rate, buffer] = entry.plots;
    rtt.push(st.rtt_ms >= 0 ? st.rtt_ms : null);
    jitter.push(st.jitter_ms);
    const prev = entry.last;
    if (prev) {
      const lost = st.lost - prev.lost, got = st.rtp_received - prev.rtp_received;
      loss.push(lost + got > 0 ? (100 * Math.max(0, lost)) / (lost + got) : 0);
    } else {
      loss.push(null);
    }
    rate.push(st.receive_bitrate !== undefined ? st.receive_bitrate / 1000 : null);
    buffer.push(st.jitter_buffer_ms);
    entry.last = st;
    const call = S.calls.get(id);
    // The node's word on muting (another frontend may have muted), unless a statistic
    // asked for before this page's own mute could undo it.
    if (call && call.muted !== st.muted && Date.now() - (call.mutedAt || 0) > 2000) {
      call.muted = st.muted;
      renderCalls();
    }
  };
  entry.timer = setInterval(tickStats, 1000);
  tickStats();
}

function stopStats(id) {
  const entry = S.plots.get(id);
  if (entry) {
    clearInterval(entry.timer);
    S.plots.delete(id);
  }
}

async function loadCallLog() {
  if (!has('call-log'))
    return;
  const r = await run('call-log', { limit: 20 });
  if (!r)
    return;
  const items = (r.calls || []).map((c) => h('li', {},
    h('strong', {}, c.peer), ` ${c.direction === 'in' ? 'called you' : 'you called'} · ${clock(c.started_at)} · `,
    c.outcome === 'answered' ? `${c.duration_s} s` : c.outcome,
    has('call') ? button('Call back', () => dial(c.peer), {
      key: `back:${c.id}`, class: 'small secondary', 'aria-label': `Call ${c.peer} back` }) : null));
  replace($('call-log'), items);
  $('call-log-empty').hidden = items.length > 0;
  $('missed').hidden = !r.missed;
  $('missed').textContent = r.missed ? `${r.missed} missed` : '';
}

// ---- conferences -------------------------------------------------------------------------

async function loadRoster() {
  if (!has('roster'))
    return;
  const r = await run('roster');
  if (!r)
    return;
  S.conferences = new Map((r.conferences || []).map((c) => [c.id, c]));
  renderCalls();
}

const MUTED_WORDS = { self: 'muted', host: 'muted by the host' };

function memberItem(conf, m) {
  const speaking = S.speakers.get(conf.id) === m.user && m.state !== 'left';
  const host = m.state === 'host';
  const controls = [];
  // The host mutes a member's input in the mix (`mute USER`), or takes it back.
  if (conf.hosting && !host && m.state !== 'left' && has('mute') && has('unmute')) {
    const byHost = m.muted === 'host';
    controls.push(button('Mute', () => confCommand(byHost ? 'unmute' : 'mute', { user: m.user }), {
      key: `mute:${conf.id}:${m.user}`, class: 'small secondary', 'aria-pressed': byHost ? 'true' : 'false',
      'aria-label': `Mute ${m.user} in the conference` }));
  }
  if (conf.hosting && !host && m.state !== 'left' && has('kick'))
    controls.push(button('Remove', () => confCommand('kick', { user: m.user }), {
      key: `kick:${conf.id}:${m.user}`, class: 'small secondary', 'aria-label': `Remove ${m.user} from the conference` }));
  return h('li', { class: speaking ? 'speaking' : null },
    h('strong', {}, m.user), ` ${host ? 'host' : m.state}`,
    m.muted ? ` · ${MUTED_WORDS[m.muted] || 'muted'}` : null,
    speaking ? h('span', { class: 'speaking-now' }, ' · speaking') : null,
    controls);
}

function conferenceCard(conf) {
  const k = (name) => `${name}:${conf.id}`;
  const controls = [];
  const me = (conf.roster || []).find((m) => m.user === S.user);
  const inIt = conf.hosting || (me && me.state !== 'left');
  // Your own microphone: at a member its leg, at the host its input to the mix.
  if (inIt && has('mute') && has('unmute')) {
    const self = me?.muted === 'self';
    controls.push(button('Mute me', () => confCommand(self ? 'unmute' : 'mute', {}), {
      key: k('self-mute'), 'aria-pressed': self ? 'true' : 'false' }));
  }
  if (conf.hosting && has('end'))
    controls.push(button('End for everyone', () => confCommand('end'), { key: k('end'), class: 'danger' }));
  else if (has('leave'))
    controls.push(button('Leave', () => confCommand('leave', { id: conf.id }), { key: k('leave'), class: 'danger' }));
  if (!conf.hosting && me?.state === 'left' && has('join'))
    controls.push(button('Join again', () => confCommand('join', { host: conf.host, id: conf.id }), { key: k('join') }));
  const speaker = S.speakers.get(conf.id);
  const invite = inIt && has('invite') ? inviteForm(conf) : null;
  return h('article', { class: 'call conference', 'aria-labelledby': `conf-${conf.id}` },
    h('h2', { id: `conf-${conf.id}` }, conf.hosting ? 'Your conference' : `Conference of ${conf.host}`),
    // Not a live region: the speaker may change three times a second.
    h('p', { class: 'muted' }, speaker ? `${speaker} is speaking` : 'Nobody is speaking'),
    h('ul', { class: 'list', 'aria-label': 'Members' }, (conf.roster || []).map((m) => memberItem(conf, m))),
    h('div', { class: 'row controls' }, controls),
    invite);
}

// `invite USER`: the host calls them in; a member asks the host, who may refuse (the
// refusal comes as `conference-refused`).
function inviteForm(conf) {
  const id = `invite-${conf.id}`;
  // The card is drawn again on every roster event: what was typed, and the node's
  // refusal, survive it.
  const input = h('input', { id, key: `${id}-input`, required: true, value: S.inviteDrafts.get(conf.id) || null,
                             oninput: (e) => S.inviteDrafts.set(conf.id, e.target.value) });
  return h('form', { class: 'form inline', onsubmit: async (e) => {
    e.preventDefault();
    const user = input.value.trim();
    const shown = h('p');
    const r = user ? await run('invite', { user }, shown) : null;
    S.inviteErrors.set(conf.id, shown.textContent);
    if (r) {
      S.inviteDrafts.delete(conf.id);
      notice(conf.hosting ? `Calling ${user} into the conference.` : `Asked ${conf.host} to call ${user} in.`);
      if (r.conferences)
        S.conferences = new Map(r.conferences.map((c) => [c.id, c]));
    }
    renderCalls();
  } },
  h('label', { for: id }, conf.hosting ? 'Call someone in' : `Ask ${conf.host} to call someone in`),
  input, h('button', { type: 'submit', key: `${id}-go` }, 'Invite'),
  h('p', { class: 'error', role: 'alert' }, S.inviteErrors.get(conf.id) || ''));
}

// At the host with conference.invite = "ask": a member asks to call someone in.
function conferenceInvite(ev) {
  const box = $('alerts');
  const item = h('div', { class: 'alert' }, h('span', {}, `${ev.from} asks you to call ${ev.user} into the conference.`),
    has('conference') ? button(`Call ${ev.user} in`, async () => {
      item.remove();
      await confCommand('conference', { users: ev.user });
    }, { class: 'small go' }) : null,
    button('Dismiss', () => item.remove(), { class: 'small', 'aria-label': `Dismiss the request to call ${ev.user} in` }));
  box.append(item);
}

async function confCommand(command, args, target) {
  const r = await run(command, args, target);
  if (r?.conferences)
    S.conferences = new Map(r.conferences.map((c) => [c.id, c]));
  else if (r)
    soon(loadRoster); // a call's answer (`mute` of a leg): the roster follows
  renderCalls();
  return r;
}

// ---- network, account, media -------------------------------------------------------------

async function loadNetwork() {
  if (has('overlay')) {
    const o = await run('overlay', { clients: 0 });
    if (o) {
      const sn = o.sn || {};
      facts($('overlay'), [['Role', o.role], ['State', o.state], ['Super node', sn.name],
        ['Address', sn.host ? `${sn.host}:${sn.port}` : null], ['Transport', sn.transport],
        ['Round trip', sn.rtt_us !== undefined ? `${(sn.rtt_us / 1000).toFixed(1)} ms` : null],
        ['Connected for', sn.seconds !== undefined ? `${sn.seconds} s` : null], ['Last error', o.last_error],
        ['Clients', o.role === 'super' ? o.client_count : null]]);
    }
  }
  if (has('nat')) {
    const n = await run('nat');
    if (n)
      showNat(n);
  }
}

function showNat(n) {
  // Without a nat-probe plugin the command answers, but a probe would only fail.
  $('nat-probe-button').hidden = !n.plugin;
  facts($('nat'), [['Verdict', n.verdict], ['Mapping', n.mapping], ['Filtering', n.filtering],
    ['Address seen outside', n.mapped], ['Tested against', n.server],
    ['Tested at', n.probed_at ? clock(n.probed_at) : null], ['Probing now', n.probing ? 'yes' : null]]);
}

async function loadAccount() {
  if (has('whoami')) {
    const w = await run('whoami');
    if (w)
      facts($('account'), [['User', w.user], ['Device', w.device], ['Login server', w.server],
        ['Certificate until', w.expires]]);
  }
  if (has('devices')) {
    const d = await run('devices');
    if (d)
      replace($('devices'), (d.devices || []).filter((x) => !x.revoked).map((x) => h('li', {},
        h('strong', {}, x.name), x.this ? ' (this device)' : ` · last seen ${clock(x.last_seen)}`,
        !x.this && has('device-remove') ? button('Remove', async () => {
          if (confirm(`Remove the device ${x.name}? It is signed out at once.`) &&
              await run('device-remove', { device: x.id }))
            loadAccount();
        }, { key: `dev:${x.id}`, class: 'small danger', 'aria-label': `Remove the device ${x.name}` }) : null)));
  }
}

// The media settings: a form when the node has `media-set`, else what `state` says. The
// node checks every value (its words are shown as they are) and applies them to the next
// call; a change from another frontend comes as the `media-settings` event.
function renderMedia() {
  const m = S.nodeState?.media;
  if (!m)
    return;
  const form = $('media-form');
  const editable = has('media-set');
  form.hidden = !editable;
  $('media').hidden = editable;
  if (!editable) {
    facts($('media'), Object.entries(m).filter(([, v]) => typeof v !== 'object' || Array.isArray(v))
      .map(([k, v]) => [k.replace(/_/g, ' '), Array.isArray(v) ? v.join(', ') : v]));
    return;
  }
  $('media-codecs-loaded').textContent = m.codecs_loaded?.length
    ? `Codecs this node has: ${m.codecs_loaded.join(', ')}.` : '';
  // What the user is typing is not overwritten by an event meanwhile.
  if (form.contains(document.activeElement) && form.dataset.dirty)
    return;
  $('media-codecs').value = (m.codecs || []).join(', ');
  $('media-source').value = m.source ?? '';
  $('media-sink').value = m.sink ?? '';
  $('media-jitter-min').value = m.jitter_min_ms ?? '';
  $('media-jitter-max').value = m.jitter_max_ms ?? '';
  delete form.dataset.dirty;
}

async function saveMedia(e) {
  e.preventDefault();
  const r = await run('media-set', {
    codecs: $('media-codecs').value, source: $('media-source').value.trim(), sink: $('media-sink').value.trim(),
    jitter_min_ms: Number($('media-jitter-min').value), jitter_max_ms: Number($('media-jitter-max').value),
  }, $('media-error'));
  if (r) {
    delete $('media-form').dataset.dirty;
    mediaSettings(r);
    notice(`Media settings changed for the next call: ${r.codecs.join(', ')}.`);
  }
}

function mediaSettings(media) {
  if (!S.nodeState)
    return;
  S.nodeState.media = media;
  renderMedia();
  renderCalls(); // the codec chooser offers what the node now has
}

// ---- views -------------------------------------------------------------------------------

function showView(name, load = true) {
  S.view = name;
  for (const b of document.querySelectorAll('nav.tabs button'))
    b.setAttribute('aria-current', b.dataset.view === name ? 'page' : 'false');
  for (const v of document.querySelectorAll('.view'))
    v.hidden = v.id !== `view-${name}`;
  if (name === 'chats' && S.open && load)
    loadHistory(); // what came meanwhile is read now
  if (name === 'calllog')
    loadCallLog();
  if (name === 'network')
    loadNetwork();
  if (name === 'settings')
    loadAccount();
}

// ---- wiring ------------------------------------------------------------------------------

function wire() {
  $('group-form').dataset.needs = 'group-create';
  $('conference-form').dataset.needs = 'conference';
  $('rejoin-button').dataset.needs = 'rejoin';
  $('passwd-form').dataset.needs = 'passwd';
  $('logout-button').dataset.needs = 'logout';
  $('dial-form').dataset.needs = 'call';
  $('add-form').dataset.needs = 'buddy-add';
  $('search-form').dataset.needs = 'search';
  document.querySelector('[data-view="calllog"]').dataset.needs = 'call-log';

  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    signIn(false);
  });
  $('register-button').addEventListener('click', () => signIn(true));
  $('reconnect').addEventListener('click', () => link.retryNow());
  $('status-select').addEventListener('change', async (e) => {
    const r = await run('status', { status: e.target.value });
    if (r)
      notice(`Your status is ${r.status}.`);
    else
      loadStatus();
  });
  $('search-form').addEventListener('submit', search);
  $('add-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    if (await request($('add-name').value.trim(), $('add-message').value.trim()))
      $('add-name').value = $('add-message').value = '';
  });
  $('compose-form').addEventListener('submit', send);
  $('compose-text').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      $('compose-form').requestSubmit();
    }
  });
  $('compose-text').addEventListener('input', typed);
  $('group-form').addEventListener('submit', createGroup);
  $('dial-form').addEventListener('submit', (e) => {
    e.preventDefault();
    dial($('dial-user').value.trim());
  });
  $('conference-form').addEventListener('submit', (e) => {
    e.preventDefault();
    confCommand('conference', { users: $('conference-users').value }, $('conference-error'));
  });
  $('rejoin-button').addEventListener('click', () => run('rejoin').then(() => soon(loadNetwork, 500)));
  $('nat-probe-button').addEventListener('click', async () => {
    notice('Probing the NAT…');
    const n = await run('nat', { action: 'probe' });
    if (n) {
      showNat(n);
      notice('NAT probe done.');
    }
  });
  $('logout-button').addEventListener('click', async () => {
    if (await run('logout'))
      loadState();
  });
  $('media-form').addEventListener('submit', saveMedia);
  $('media-form').addEventListener('input', () => ($('media-form').dataset.dirty = '1'));
  $('passwd-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const r = await run('passwd', { old: $('passwd-old').value, new: $('passwd-new').value,
                                    revoke_others: $('passwd-revoke').checked }, $('passwd-error'));
    if (r) {
      $('passwd-old').value = $('passwd-new').value = '';
      notice(`Password changed; ${r.revoked} other devices signed out.`);
    }
  });
  for (const b of document.querySelectorAll('nav.tabs button'))
    b.addEventListener('click', () => showView(b.dataset.view));
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && S.open)
      loadHistory();
  });
  window.addEventListener('resize', () => soon(renderCalls, 100));
  // The plots are pixels: drawn again in the other theme's colours.
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', renderCalls);
}

wire();
link.connect();
