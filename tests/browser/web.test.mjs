// web.test.mjs: alice's day on the page, in Debian's Chromium, with bob driven over his ctl
// socket. Run by test-browser.c (which starts the lab) with HARK_WEB_URL (alice's one-time
// link), HARK_BOB_CTL (bob's control socket), HARK_ALICE_CTL (alice's: only to read what
// her node says after a change made on the page) and HARK_SHOTS (where each step's screenshot
// goes). Every step goes through the page's controls by their roles and labels, as a user
// (or a screen reader) finds them; the exit status is 0 only when every step was seen.
import { chromium } from 'playwright-core';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

const URL_ = process.env.HARK_WEB_URL;
const BOB = process.env.HARK_BOB_CTL;
const ALICE = process.env.HARK_ALICE_CTL;
const SHOTS = process.env.HARK_SHOTS || '.';
const RESTART = process.env.HARK_RESTART;
// Bounds, scaled as the C harness scales its waits (HARK_TEST_TIMEOUT_SCALE): they only
// end a stuck run, they time nothing.
const SCALE = Number(process.env.HARK_TEST_TIMEOUT_SCALE) || 1;
const STEP_MS = 20000 * SCALE;
const PASSWORD = 'alice-in-the-browser-1';

setTimeout(() => {
  console.error(`web.test.mjs: not done within ${120 * SCALE} s`);
  process.exit(1);
}, 120000 * SCALE).unref();

function log(text) {
  console.log(`# ${new Date().toISOString().slice(11, 23)} ${text}`);
}

// ---- bob, over ctl -----------------------------------------------------------------------

class Ctl {
  constructor(socket) {
    this.socket = socket;
    this.events = [];
    this.waiters = [];
    this.pending = new Map();
    this.next = 1;
  }

  open() {
    return new Promise((resolve, reject) => {
      const s = net.createConnection(this.socket);
      this.s = s;
      let buffer = '';
      s.setEncoding('utf8');
      s.on('error', reject);
      s.on('data', (chunk) => {
        buffer += chunk;
        let nl;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const m = JSON.parse(buffer.slice(0, nl));
          buffer = buffer.slice(nl + 1);
          if (m.event === 'hello')
            resolve();
          else if ('event' in m)
            this.event(m);
          else if (this.pending.has(m.id)) {
            this.pending.get(m.id)(m);
            this.pending.delete(m.id);
          }
        }
      });
    });
  }

  event(m) {
    this.events.push(m);
    this.waiters = this.waiters.filter((w) => !w(m));
  }

  async ask(command, args = {}) {
    const id = `b${this.next++}`;
    const answer = new Promise((resolve) => this.pending.set(id, resolve));
    this.s.write(`${JSON.stringify({ id, command, args })}\n`);
    const m = await answer;
    if (!m.ok)
      throw new Error(`bob: ${command}: ${m.error.code}: ${m.error.message}`);
    return m.result;
  }

  // The first event (seen already, or to come) that match takes.
  waitEvent(match, what) {
    const seen = this.events.find(match);
    if (seen)
      return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`bob: no ${what} within ${STEP_MS} ms`)), STEP_MS);
      this.waiters.push((m) => {
        if (!match(m))
          return false;
        clearTimeout(timer);
        resolve(m);
        return true;
      });
    });
  }
}

// ---- the browser ---------------------------------------------------------------------------

let page;
let shot = 0;
async function screenshot(name) {
  shot += 1;
  const file = path.join(SHOTS, `${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  log(`screenshot ${file}`);
}

async function until(what, fn, ms = STEP_MS) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last)
        return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: not seen within ${ms} ms (last: ${last})`);
}

async function visible(locator, what) {
  await locator.first().waitFor({ state: 'visible', timeout: STEP_MS }).catch((e) => {
    throw new Error(`${what}: ${e.message.split('\n')[0]}`);
  });
  log(`seen: ${what}`);
  return locator.first();
}

// Opens a WebSocket to the node's /ws from page and says whether it opened and what came
// (a refused one closes without either).
function tryWebSocket(from) {
  const ws = new URL('/ws', URL_);
  ws.protocol = 'ws:';
  return from.evaluate((u) => new Promise((resolve) => {
    const socket = new WebSocket(u);
    const got = [];
    socket.onmessage = (m) => got.push(m.data);
    socket.onopen = () => {
      socket.send(JSON.stringify({ id: 1, command: 'buddies' }));
      setTimeout(() => resolve({ opened: true, got }), 1000);
    };
    socket.onclose = () => resolve({ opened: false, got });
  }), ws.href);
}

const axeSource = readFileSync(new URL('./node_modules/axe-core/axe.min.js', import.meta.url), 'utf8');

// axe-core's WCAG 2 A and AA rules: every control named, every form field labelled,
// ARIA used as specified, contrast. Any violation fails the test, listed.
async function accessible(where) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() =>
    window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa'] } }));
  const bad = result.violations.map((v) => `${v.id} (${v.help}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  if (bad.length)
    throw new Error(`accessibility, ${where}:\n  ${bad.join('\n  ')}`);
  const named = await page.evaluate(() => [...document.querySelectorAll('button, input, select, textarea')]
    .filter((el) => el.offsetParent !== null).length);
  log(`accessibility ${where}: no violations (${result.passes.length} rules passed, ${named} controls shown)`);
}

async function main() {
  const bob = new Ctl(BOB);
  await bob.open();
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
                                          args: ['--no-sandbox'] });
  try {
    const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    page = await context.newPage();
    let problems = [];
    page.on('console', (m) => {
      if (m.type() === 'error')
        problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(String(e)));

    // 1. The one-time link signs the browser in to the node; the page asks for an account.
    const started = Date.now();
    await page.goto(URL_);
    await visible(page.getByRole('heading', { name: 'Sign in' }), 'the sign-in form');
    const loaded = await page.evaluate(() => performance.getEntriesByType('navigation')[0].loadEventEnd);
    log(`page loaded in ${loaded.toFixed(0)} ms (link to load event), signed-in check shown after ${Date.now() - started} ms`);
    await accessible('sign-in');
    await screenshot('sign-in');

    // A wrong password is shown as the node says it.
    await page.getByLabel('User name', { exact: true }).fill('alice');
    await page.getByLabel('Password', { exact: true }).fill('wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await visible(page.getByRole('alert').filter({ hasText: 'wrong password' }), 'the login error');
    await screenshot('sign-in-error');

    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Create account' }).click();
    await visible(page.getByRole('heading', { name: 'Contacts', level: 2 }), 'the signed-in page');
    await screenshot('signed-in');

    // 2. bob asks to be alice's contact; she accepts on the page; he is shown online.
    // Requests are pushed (bob's SN hints alice's node, which emits `requests-changed`) and
    // the page never asks again by itself: bob's request shows on the Contacts tab; he
    // withdraws it and it goes; he asks again and it is back. (The first may also come with
    // what the page loads as it signs in; the withdrawal and the second only by push.)
    await bob.ask('buddy-add', { name: 'alice', message: 'hi, it is bob' });
    await visible(page.getByRole('button', { name: 'Accept bob' }), 'bob\'s contact request');
    await bob.ask('buddy-cancel', { name: 'alice' });
    await until('bob\'s withdrawn request gone from the page',
                async () => (await page.getByRole('button', { name: 'Accept bob' }).count()) === 0);
    log('seen: the withdrawal, pushed');
    await bob.ask('buddy-add', { name: 'alice', message: 'hi, it is bob' });
    const accept = await visible(page.getByRole('button', { name: 'Accept bob' }), 'bob\'s contact request, pushed');
    await accessible('contact request');
    await screenshot('contact-request');
    await accept.press('Enter'); // the keyboard alone works: Enter on the focused button
    const bobItem = page.getByRole('list', { name: 'Buddies' }).getByRole('listitem').filter({ hasText: 'bob' });
    await until('bob online in the buddy list', async () => (await bobItem.first().textContent()).includes('online'));
    log('seen: bob online');
    await screenshot('bob-online');

    // Her status, as bob's node is told it; a prefix search finds him.
    await page.getByLabel('Your status').selectOption('away');
    await bob.waitEvent((e) => e.event === 'presence-changed' && e.user === 'alice' && e.status === 'away',
                        'alice away');
    log('bob saw alice away');
    await page.getByLabel('Your status').selectOption('online');
    await page.getByLabel('Name, or its start followed by *').fill('bo*');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await visible(page.getByRole('list', { name: 'Search results' }).getByText('bob'), 'bob in the search results');

    // 3. Messages both ways, with delivery and read ticks.
    await page.getByRole('button', { name: 'Message bob' }).click();
    await page.getByLabel('Message to bob').fill('hello bob, from the browser');
    await page.getByLabel('Message to bob').press('Enter'); // Enter sends, Shift+Enter is a new line
    const mine = page.getByRole('log').getByRole('listitem').filter({ hasText: 'hello bob, from the browser' });
    await visible(mine, 'the message sent');
    const got = await bob.waitEvent((e) => e.event === 'message' && e.text === 'hello bob, from the browser',
                                    'alice\'s message');
    await until('the message delivered', async () => /delivered|read/.test(await mine.textContent()));
    log('seen: delivered');
    await screenshot('message-delivered');
    await bob.ask('history', { with: 'alice' }); // bob reads it: alice's page shows "read"
    await until('the message read', async () => (await mine.textContent()).includes('read'));
    log('seen: read');
    await bob.ask('typing', { to: 'alice', state: 'on' });
    await visible(page.getByText('bob is typing…'), 'bob typing');
    // What a peer writes is text, never markup.
    const sent = await bob.ask('msg', { to: 'alice', text: 'hi alice, bob here <b>not bold</b>' });
    const his = page.getByRole('log').getByRole('listitem').filter({ hasText: 'hi alice, bob here <b>not bold</b>' });
    await visible(his, 'bob\'s message, as he wrote it');
    if (await his.locator('b').count())
      throw new Error('bob\'s message became markup on the page');
    await bob.waitEvent((e) => e.event === 'message-state' && e.message_id === sent.id && e.state === 'read',
                        'the read receipt of his message');
    log(`bob's message read on the page (bob had alice's as ${got.message_id})`);
    await screenshot('messages-read');

    // A group: alice makes it on the page and writes to it; bob answers in it.
    await page.getByLabel('Group name').fill('friends');
    await page.getByLabel('Members (names separated by commas)').fill('bob');
    await page.getByRole('button', { name: 'Create group' }).click();
    await visible(page.getByRole('heading', { name: 'Group friends' }), 'the group\'s conversation');
    await page.getByLabel('Message to friends').fill('hello friends');
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    const inGroup = await bob.waitEvent((e) => e.event === 'message' && e.text === 'hello friends',
                                        'alice\'s group message');
    await bob.ask('msg', { to: `#${inGroup.conversation.slice(2)}`, text: 'bob in the group' });
    await visible(page.getByRole('log').getByRole('listitem').filter({ hasText: 'bob in the group' }),
                  'bob\'s answer in the group');
    await screenshot('group');

    // 4. bob calls; alice answers, mutes, keys digits, watches the statistics, hangs up.
    const call = await bob.ask('call', { user: 'alice' });
    const answer = await visible(page.getByRole('button', { name: 'Answer' }), 'the incoming call');
    await accessible('incoming call');
    await screenshot('incoming-call');
    await answer.press('Enter');
    const card = page.getByRole('article', { name: 'Call from bob' });
    await visible(card.getByText('in call'), 'the call active');
    await bob.waitEvent((e) => e.event === 'call' && e.call_id === call.id && e.state === 'active', 'the call active');
    const mute = card.getByRole('button', { name: 'Mute' });
    await mute.click();
    await until('mute pressed', async () => (await mute.getAttribute('aria-pressed')) === 'true');
    log('seen: muted');
    await card.getByRole('button', { name: 'Hold' }).click();
    await visible(card.getByText('on hold (you held it)'), 'the call held');
    await bob.waitEvent((e) => e.event === 'call' && e.call_id === call.id && e.state === 'held' && e.remote_hold,
                        'the call held by alice');
    await card.getByRole('button', { name: 'Resume' }).click();
    await visible(card.getByText('in call'), 'the call resumed');
    await card.getByRole('button', { name: 'Keypad' }).click();
    await card.getByRole('button', { name: 'Send 1', exact: true }).click();
    await until('the keypad focused', () => page.evaluate(() => !!document.activeElement.closest('.keypad')));
    await page.keyboard.press('2'); // typed on the keyboard while in the keypad
    await page.keyboard.press('#');
    for (const digit of ['1', '2', '#'])
      await bob.waitEvent((e) => e.event === 'call-dtmf' && e.call_id === call.id && e.digit === digit,
                          `the digit ${digit} at bob`);
    log('bob heard 1 2 #');
    await screenshot('call-keypad');
    const rate = card.getByRole('img', { name: /Bitrate received over time/ });
    const samples = async () => Number(await rate.getAttribute('data-samples'));
    const before = await until('the first statistics', samples);
    await until('the statistics plot growing', async () => (await samples()) >= before + 3);
    const label = await rate.getAttribute('aria-label');
    if (!/latest \d/.test(label))
      throw new Error(`the bitrate plot has no value: ${label}`);
    log(`statistics: ${label}`);
    await accessible('call with statistics');
    await screenshot('call-statistics');
    // A phone's width (and a 780 px window at 200 % zoom): one column, nothing wider.
    await page.setViewportSize({ width: 390, height: 844 });
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    if (wide > 390)
      throw new Error(`at 390 px the page is ${wide} px wide: it scrolls sideways`);
    await screenshot('call-phone-width');
    await page.emulateMedia({ colorScheme: 'dark' });
    await accessible('dark theme, phone width'); // the dark colours' contrast too
    await screenshot('call-dark');
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 1100, height: 900 });
    await card.getByRole('button', { name: 'Hang up' }).click();
    await bob.waitEvent((e) => e.event === 'call' && e.call_id === call.id && e.state === 'ended', 'the call ended');
    await until('the call card gone', async () => (await card.count()) === 0);
    await visible(page.getByText(/Call with bob ended/), 'the call ended');
    await screenshot('call-ended');

    // Her media settings, through the form: a value the node refuses is shown in its
    // words and changes nothing; a good change is what her node's `state` says (asked
    // over her ctl socket, not the page) and what her next call offers: G.711 first.
    const alice = new Ctl(ALICE);
    await alice.open();
    await page.getByRole('button', { name: 'Settings', exact: true }).click();
    const codecs = page.getByLabel('Codecs, in order of preference (separated by commas)');
    await until('the media form filled in', async () => (await codecs.inputValue()) === 'opus, g711');
    await codecs.fill('opus, speex');
    await page.getByRole('button', { name: 'Use for the next call' }).click();
    await visible(page.locator('#media-error').filter({ hasText: 'codecs: \'speex\' is not a codec loaded here' }),
                  'the refusal in the node\'s words');
    let media = (await alice.ask('state')).media;
    if (media.codecs.join() !== 'opus,g711')
      throw new Error(`a refused media-set changed the codecs: ${media.codecs}`);
    await screenshot('settings-refused');
    await codecs.fill('g711, opus');
    await page.getByLabel('Jitter buffer, least delay (ms)').fill('40');
    await page.getByRole('button', { name: 'Use for the next call' }).click();
    await visible(page.getByText('Media settings changed for the next call: g711, opus.'), 'the change confirmed');
    media = (await alice.ask('state')).media;
    if (media.codecs.join() !== 'g711,opus' || media.jitter_min_ms !== 40)
      throw new Error(`alice's node has other media settings than the page set: ${JSON.stringify(media)}`);
    log(`alice's state: codecs ${media.codecs}, jitter ${media.jitter_min_ms}-${media.jitter_max_ms} ms`);
    await accessible('media settings');
    await screenshot('settings-media');
    alice.s.destroy();

    // A conference alice hosts: bob's leg rings at his node, he answers (with PCMU, the
    // first of the codecs alice just chose), the roster shows him connected and who
    // speaks; alice mutes him in the mix, an invite of a bad name is refused in the
    // node's words, and she ends it for everyone.
    await page.getByRole('button', { name: 'Calls', exact: true }).click();
    await page.getByLabel(/Host a conference with/).fill('bob');
    await page.getByRole('button', { name: 'Start conference' }).click();
    const leg = await bob.waitEvent((e) => e.event === 'call' && e.peer === 'alice' && e.state === 'ringing' &&
                                    e.call_id !== call.id, 'the conference leg ringing');
    await bob.ask('answer', { id: leg.call_id });
    const legUp = await bob.waitEvent((e) => e.event === 'call' && e.call_id === leg.call_id && e.state === 'active',
                                      'the conference leg active');
    if (legUp.codec !== 'pcmu')
      throw new Error(`the leg alice placed after choosing g711, opus uses ${legUp.codec}`);
    log('the conference leg uses pcmu');
    const conference = page.getByRole('article', { name: 'Your conference' });
    await visible(conference.getByRole('listitem').filter({ hasText: /bob\s+connected/ }), 'bob connected in the roster');
    await visible(conference.locator('li.speaking'), 'the active speaker highlighted');
    await visible(conference.getByText(/^(alice|bob) is speaking$/), 'who speaks, in words');
    await screenshot('conference');
    const muteBob = conference.getByRole('button', { name: 'Mute bob in the conference' });
    await muteBob.click();
    await until('bob muted by the host', async () => (await muteBob.getAttribute('aria-pressed')) === 'true');
    await visible(conference.getByRole('listitem').filter({ hasText: 'muted by the host' }), 'bob shown muted');
    await bob.waitEvent((e) => e.event === 'conference-roster' &&
                        (e.roster || []).some((m) => m.user === 'bob' && m.muted === 'host'), 'bob muted by the host');
    log('bob muted in the mix, as his node was told');
    const mutedAt = bob.events.length; // only rosters from now on count
    await muteBob.click();
    await until('bob unmuted by the host', async () => (await muteBob.getAttribute('aria-pressed')) === 'false');
    await bob.waitEvent((e) => bob.events.indexOf(e) >= mutedAt && e.event === 'conference-roster' &&
                        (e.roster || []).some((m) => m.user === 'bob' && !m.muted), 'bob unmuted');
    const muteMe = conference.getByRole('button', { name: 'Mute me' });
    await muteMe.click();
    await until('alice\'s own microphone out of the mix', async () => (await muteMe.getAttribute('aria-pressed')) === 'true');
    await bob.waitEvent((e) => e.event === 'conference-roster' &&
                        (e.roster || []).some((m) => m.user === 'alice' && m.muted === 'self'), 'alice muted');
    log('alice muted herself, as bob\'s node was told');
    await conference.getByLabel('Call someone in').fill('no such user!');
    await conference.getByRole('button', { name: 'Invite' }).click();
    await visible(conference.getByRole('alert').filter({ hasText: 'is not a user name' }), 'the invite refused');
    await accessible('conference controls');
    await screenshot('conference-controls');
    await conference.getByRole('button', { name: 'End for everyone' }).click();
    await bob.waitEvent((e) => e.event === 'call' && e.call_id === leg.call_id && e.state === 'ended',
                        'the conference leg ended');
    await until('the conference gone', async () => (await conference.count()) === 0);
    log('seen: the conference ended');

    // What the curious see: the overlay and the NAT, and this account's devices.
    await page.getByRole('button', { name: 'Network', exact: true }).click();
    await visible(page.locator('#overlay').getByText('attached'), 'the overlay attached');
    await accessible('network');
    await screenshot('network');
    await page.getByRole('button', { name: 'Settings', exact: true }).click();
    await visible(page.getByRole('list', { name: 'Devices' }).getByText('(this device)'), 'this device listed');
    await accessible('settings');
    await screenshot('settings');

    // 5. alice's node restarts (test-browser.c does it when asked through HARK_RESTART):
    // the page says it lost the node, tries again with its back-off, and comes back by
    // itself with the cookie it has, showing the node's state again.
    writeFileSync(RESTART, '');
    await visible(page.getByText(/^Not connected to the node/), 'the node gone');
    await screenshot('node-restarting');
    await until('alice\'s node restarted', () => !existsSync(RESTART), 3 * STEP_MS);
    await visible(page.getByText('Connected to the node.'), 'the connection back');
    await page.getByRole('button', { name: /^Contacts/ }).click();
    await visible(bobItem.filter({ hasText: 'online' }), 'bob online after the restart');
    await screenshot('reconnected');

    // 6. Nobody else drives the phone. A page of another site (127.0.0.1 on another port
    // is the same *site*, so the SameSite cookie is sent: the Origin check must refuse it)
    // opens no WebSocket; a browser without the cookie gets neither the page nor a socket,
    // and the one-time link does not work twice.
    const elsewhere = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>another site</title>');
    });
    await new Promise((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
    const other = await context.newPage();
    await other.goto(`http://127.0.0.1:${elsewhere.address().port}/`);
    const fromOther = await tryWebSocket(other);
    elsewhere.close();
    if (fromOther.opened || fromOther.got.length)
      throw new Error(`a page of another origin opened the node's WebSocket: ${JSON.stringify(fromOther)}`);
    const stranger = await browser.newContext();
    const bare = await stranger.newPage();
    const root = await bare.goto(new URL('/', URL_).href);
    if (root.status() !== 401 || (await bare.locator('body').textContent()).includes('Sign in'))
      throw new Error(`without the cookie / answered ${root.status()} with the page`);
    const fromBare = await tryWebSocket(bare);
    if (fromBare.opened || fromBare.got.length)
      throw new Error(`a browser without the cookie opened the WebSocket: ${JSON.stringify(fromBare)}`);
    const again = await bare.goto(URL_);
    if (again.status() !== 403)
      throw new Error(`the one-time link worked twice (${again.status()})`);
    await stranger.close();
    log('another origin, no cookie, a used link: refused');

    // 7. A node without some features: the page shows no control for them. The node's
    // `help` answer is cut (Playwright sits in the WebSocket) as if it had no calls,
    // conferences, groups, NAT probe or media-set.
    const lacking = new Set(['call', 'conference', 'group-create', 'nat', 'dtmf', 'media-set']);
    const smaller = await context.newPage();
    await smaller.routeWebSocket(/\/ws$/, (ws) => {
      const server = ws.connectToServer();
      server.onMessage((m) => {
        const answer = JSON.parse(m);
        if (answer.result?.commands)
          answer.result.commands = answer.result.commands.filter((c) => !lacking.has(c.name));
        ws.send(JSON.stringify(answer));
      });
    });
    await smaller.goto(new URL('/', URL_).href);
    await visible(smaller.getByRole('button', { name: 'Message bob' }), 'the page of a smaller node');
    for (const name of ['Call bob', 'Start conference', 'Create group', 'Call', 'Probe the NAT again'])
      if (await smaller.getByRole('button', { name, exact: true }).count())
        throw new Error(`a node without it shows the control "${name}"`);
    // Without media-set the media settings are shown, not offered as a form; since the
    // restart they are the configuration file's again (media-set never wrote it).
    await smaller.getByRole('button', { name: 'Settings', exact: true }).click();
    await visible(smaller.locator('#media').getByText('opus, g711', { exact: true }),
                  'the media settings of the file, shown read-only');
    if (await smaller.getByRole('button', { name: 'Use for the next call' }).count())
      throw new Error('a node without media-set shows the media settings form');
    await smaller.close();
    log('a node without calls, conferences, groups, a NAT probe and media-set: no controls for them');

    // Chromium logs the connections refused while the node was down; nothing else may be.
    problems = problems.filter((p) => !/WebSocket connection .* failed/.test(p));
    if (problems.length)
      throw new Error(`the page logged errors:\n  ${problems.join('\n  ')}`);
    log('every step seen');
  } catch (e) {
    await screenshot('failure').catch(() => {});
    throw e;
  } finally {
    await browser.close();
    bob.s.destroy();
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(`web.test.mjs: ${e.stack || e}`);
  // The step that failed, for the harness's verdict: the logs after it are long.
  writeFileSync(path.join(SHOTS, 'failure.txt'), `${e.message || e}`.split('\n')[0]);
  process.exit(1);
});
