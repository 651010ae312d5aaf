// Switchable bugs: for every bug of bugs.js, one probe that answers "does
// the server conform here?". Each probe must say yes against a clean
// server and no against a server with just that bug on, so every bug is
// proven to break what it claims, and the probe to notice it.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { BUGS } from '../bugs.js';
import {
  ack,
  addMember,
  adminOk,
  collectUntilNotified,
  connect,
  createRoom,
  isRecentIso,
  signToken,
  sleep,
  startServer,
  subscribedUser,
  userWithToken,
  waitFor,
} from './helpers.js';

// Shared by the clean and the bugged servers: a short client window, a short grace.
const FLAGS = ['--client-rate-limit', '5', '--client-rate-window-ms', '400', '--token-grace', '1'];

const put = (srv, roomId, title, isPrivate = false) => adminOk(srv, 'PUT', `/rooms/${roomId}`, { title, isPrivate, status: 'active' }, 200);
const refusedConnect = (p) =>
  p.then(
    (s) => (s.disconnect(), false),
    () => true,
  );

async function publisher(srv) {
  const app = (await adminOk(srv, 'POST', '/apps', { label: 'probe', scopes: ['realtime:publish'] }, 201)).body;
  return async (roomId, event) => {
    const res = await fetch(`${srv.socket}/api/rooms/${roomId}/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${app.apiKey}`, 'x-app-id': app.appId, 'content-type': 'application/json' },
      body: JSON.stringify({ event: event.replace('APP', app.appId), data: {} }),
    });
    await res.text();
    return res.status;
  };
}

/** bug name -> probe(srv): true when the server behaves as the protocol text says. */
const PROBES = {
  'ns-no-auth': async (srv) => refusedConnect(connect(`${srv.socket}/rooms/${await createRoom(srv)}`, undefined)),
  'root-no-auth': async (srv) => refusedConnect(connect(`${srv.socket}/`, 'not-a-jwt')),
  'room-ns-closed': async (srv) => {
    const u = await userWithToken(srv, 'Ann');
    return !(await refusedConnect(connect(`${srv.socket}/rooms/${await createRoom(srv)}`, u.token)));
  },
  'room-ns-unknown-open': async (srv) => {
    const u = await userWithToken(srv, 'Ann');
    return refusedConnect(connect(`${srv.socket}/rooms/r-nope`, u.token));
  },
  'no-upgrade': async (srv) => {
    const u = await userWithToken(srv, 'Ann');
    const s = await connect(`${srv.socket}/`, u.token, { transports: ['polling', 'websocket'] });
    try {
      // The upgrade may be done by the time the connect resolves.
      return await new Promise((resolve) => {
        if (s.io.engine.transport.name === 'websocket') resolve(true);
        s.io.engine.once('upgrade', () => resolve(true));
        setTimeout(() => resolve(false), 2000);
      });
    } finally {
      s.disconnect();
    }
  },
  'root-no-auth-check-expiry': async (srv) => {
    const u = await userWithToken(srv, 'Ann', { ttl: -10 });
    return refusedConnect(connect(`${srv.socket}/`, u.token));
  },
  'leak-rooms': async (srv) => {
    const roomId = await createRoom(srv);
    const u = await userWithToken(srv, 'Ann');
    const s = await srv.connect('/', u.token);
    return (await collectUntilNotified(srv, u.uid, s, 'room:updated', () => put(srv, roomId, 'x'))).length === 0;
  },
  'leak-namespaces': async (srv) => {
    const [a, b] = [await createRoom(srv), await createRoom(srv)];
    const u = await userWithToken(srv, 'Ann');
    const s = await srv.connect(`/rooms/${b}`, u.token);
    // Room b's own update comes after a's: by then a leak would be in.
    const got = [];
    s.on('room:updated', (e) => got.push(e.roomId));
    const own = new Promise((resolve) => s.on('room:updated', (e) => e.roomId === b && resolve()));
    await put(srv, a, 'x');
    await put(srv, b, 'y');
    await own;
    return !got.includes(a);
  },
  'unsubscribe-keeps': async (srv) => {
    const roomId = await createRoom(srv);
    const { s, uid } = await subscribedUser(srv, roomId, 'Ann');
    assert.equal((await ack(s, 'room:unsubscribe', { roomId })).success, true);
    return (await collectUntilNotified(srv, uid, s, 'room:updated', () => put(srv, roomId, 'x'))).length === 0;
  },
  'revocation-ignores-live': async (srv) => {
    const u = await userWithToken(srv, 'Ann', { jti: 'probe-jti' });
    const s = await srv.connect('/', u.token);
    // The disconnect is sent before the revocation answers; a notification after it reaches only a live socket.
    const gone = waitFor(s, 'disconnect', { timeout: 5000 }).then(() => true);
    const alive = waitFor(s, 'notification:received', { timeout: 5000 }).then(() => false);
    await adminOk(srv, 'POST', '/revocations', { jti: 'probe-jti' }, 201);
    await adminOk(srv, 'POST', `/users/${u.uid}/notifications`, { kind: 'marker', title: 'marker', body: 'marker' }, 201);
    return Promise.race([gone, alive]);
  },
  'removal-keeps': async (srv) => {
    const roomId = await createRoom(srv, { isPrivate: true });
    const u = await userWithToken(srv, 'Ann');
    await addMember(srv, roomId, u.uid);
    const s = await srv.connect('/', u.token);
    await ack(s, 'room:subscribe', { roomId });
    await adminOk(srv, 'DELETE', `/rooms/${roomId}/members/${u.uid}`, undefined, 204);
    return (await collectUntilNotified(srv, u.uid, s, 'room:updated', () => put(srv, roomId, 'x', true))).length === 0;
  },
  'private-open': async (srv) => {
    const roomId = await createRoom(srv, { isPrivate: true });
    const u = await userWithToken(srv, 'Eve');
    const s = await srv.connect('/', u.token);
    return (await ack(s, 'room:subscribe', { roomId })).error?.code === 'PERMISSION_DENIED';
  },
  'no-rate-limit': async (srv) => {
    const roomId = await createRoom(srv);
    const u = await userWithToken(srv, 'Ann');
    const s = await srv.connect('/', u.token);
    const replies = [];
    for (let i = 0; i < 6; i++) replies.push(await ack(s, 'presence:get_online', { roomId }));
    return replies[5].error?.code === 'RATE_LIMIT_EXCEEDED';
  },
  'over-limit-processed': async (srv) => {
    const roomId = await createRoom(srv);
    const u = await userWithToken(srv, 'Ann');
    const s = await srv.connect('/', u.token);
    for (let i = 0; i < 5; i++) await ack(s, 'presence:get_online', { roomId });
    const subscribed = await collectUntilNotified(srv, u.uid, s, 'room:subscribed', async () => {
      assert.equal((await ack(s, 'room:subscribe', { roomId })).error?.code, 'RATE_LIMIT_EXCEEDED');
    });
    return subscribed.length === 0;
  },
  'rate-window-never-resets': async (srv) => {
    const roomId = await createRoom(srv);
    const u = await userWithToken(srv, 'Ann');
    const s = await srv.connect('/', u.token);
    for (let i = 0; i < 6; i++) await ack(s, 'presence:get_online', { roomId });
    await sleep(500);
    return (await ack(s, 'presence:get_online', { roomId })).roomId === roomId;
  },
  'no-validation': async (srv) => {
    const u = await userWithToken(srv, 'Ann');
    const s = await srv.connect('/', u.token);
    return (await ack(s, 'room:subscribe', {})).error?.code === 'INVALID_PAYLOAD';
  },
  'duplicate-events': async (srv) => {
    const roomId = await createRoom(srv);
    const { s, uid } = await subscribedUser(srv, roomId, 'Ann');
    return (await collectUntilNotified(srv, uid, s, 'room:updated', () => put(srv, roomId, 'x'))).length === 1;
  },
  'no-presence-offline': async (srv) => {
    const roomId = await createRoom(srv);
    const watcher = await subscribedUser(srv, roomId, 'Watcher');
    const other = await subscribedUser(srv, roomId, 'Ann');
    const offline = await collectUntilNotified(srv, watcher.uid, watcher.s, 'presence:user_offline', () =>
      ack(other.s, 'room:unsubscribe', { roomId }),
    );
    return offline.length === 1;
  },
  'no-token-expired': async (srv) => {
    // 2 s: the connect lands before the expiry on a busy machine too (a 1 s
    // token once expired first, and the connect was refused).
    const u = await userWithToken(srv, 'Ann', { ttl: 2 });
    const s = await srv.connect('/', u.token);
    return waitFor(s, 'token:expired', { timeout: 5000 }).then(
      () => true,
      () => false,
    );
  },
  'refresh-broken': async (srv) => {
    const u = await userWithToken(srv, 'Ann');
    const now = Math.floor(Date.now() / 1000);
    const res = await fetch(`${srv.socket}/api/auth/refresh`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refreshToken: signToken({ sub: u.uid, iat: now, exp: now + 60, typ: 'refresh' }) }),
    });
    assert.equal(res.status, 200);
    const { accessToken } = await res.json();
    return connect(`${srv.socket}/`, accessToken).then(
      (s) => (s.disconnect(), true),
      () => false,
    );
  },
  'stale-timestamps': async (srv) => {
    const roomId = await createRoom(srv);
    const u = await userWithToken(srv, 'Ann');
    const s = await srv.connect('/', u.token);
    const ev = waitFor(s, 'room:subscribed');
    await ack(s, 'room:subscribe', { roomId });
    return isRecentIso((await ev).timestamp);
  },
  'wrong-error-code': async (srv) => {
    const u = await userWithToken(srv, 'Ann');
    const s = await srv.connect('/', u.token);
    return (await ack(s, 'room:subscribe', { roomId: 'r-nope' })).error?.code === 'ROOM_NOT_FOUND';
  },
  'no-ack': async (srv) => {
    const u = await userWithToken(srv, 'Ann');
    const s = await srv.connect('/', u.token);
    const roomId = await createRoom(srv);
    let acked = false;
    // The ack is written when the event is handled, before the marker is even sent.
    await collectUntilNotified(srv, u.uid, s, 'presence:user_online', async () => {
      const online = waitFor(s, 'presence:user_online');
      s.emit('room:subscribe', { roomId }, () => (acked = true));
      await online;
    });
    return acked;
  },
  'ack-no-success': async (srv) => {
    const u = await userWithToken(srv, 'Ann');
    const s = await srv.connect('/', u.token);
    return (await ack(s, 'room:subscribe', { roomId: await createRoom(srv) })).success === true;
  },
  'room-id-renamed': async (srv) => {
    const roomId = await createRoom(srv);
    const { s } = await subscribedUser(srv, roomId, 'Ann');
    const updated = waitFor(s, 'room:updated');
    await put(srv, roomId, 'x');
    return (await updated).roomId === roomId;
  },
  'app-prefix-unchecked': async (srv) => (await (await publisher(srv))(await createRoom(srv), 'lottery:draw_started')) === 403,
  'app-scope-unchecked': async (srv) => {
    const app = (await adminOk(srv, 'POST', '/apps', { label: 'reader', scopes: [] }, 201)).body;
    const res = await fetch(`${srv.socket}/api/rooms/${await createRoom(srv)}/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${app.apiKey}`, 'x-app-id': app.appId, 'content-type': 'application/json' },
      body: JSON.stringify({ event: `${app.appId}:x`, data: {} }),
    });
    await res.text();
    return res.status === 403;
  },
  'notifications-to-all': async (srv) => {
    const [ann, bob] = [await userWithToken(srv, 'Ann'), await userWithToken(srv, 'Bob')];
    const s = await srv.connect('/', bob.token);
    // Ann's notification first, then Bob's own: by then a leak would be in.
    const got = [];
    s.on('notification:received', (n) => got.push(n.title));
    const own = new Promise((resolve) => s.on('notification:received', (n) => n.title === 'bob' && resolve()));
    await adminOk(srv, 'POST', `/users/${ann.uid}/notifications`, { kind: 'k', title: 'ann', body: 'b' }, 201);
    await adminOk(srv, 'POST', `/users/${bob.uid}/notifications`, { kind: 'k', title: 'bob', body: 'b' }, 201);
    await own;
    return !got.includes('ann');
  },
  'notifications-on-namespaces': async (srv) => {
    const ann = await userWithToken(srv, 'Ann');
    const onRoom = await srv.connect(`/rooms/${await createRoom(srv)}`, ann.token);
    const onRoot = await srv.connect('/', ann.token);
    // The `/` socket hears it first; by then a leak to the room namespace
    // socket (same process, same tick) is in.
    const got = [];
    onRoom.on('notification:received', (n) => got.push(n.title));
    const own = new Promise((resolve) => onRoot.on('notification:received', resolve));
    await adminOk(srv, 'POST', `/users/${ann.uid}/notifications`, { kind: 'k', title: 'ann', body: 'b' }, 201);
    await own;
    await sleep(50);
    return got.length === 0;
  },
  'app-rate-unlimited': async (srv) => {
    const publish = await publisher(srv);
    const roomId = await createRoom(srv);
    const statuses = [];
    for (let i = 0; i < 11; i++) statuses.push(await publish(roomId, 'APP:tick'));
    return statuses[10] === 429;
  },
  'quiz-codes-swapped': async (srv) => {
    const u = await userWithToken(srv, 'Ann');
    const s = await srv.connect('/', u.token);
    const reply = await ack(s, 'quiz:answer_submit', { questionId: 'q-nope', answer: 'a', timestamp: Date.now() });
    return reply.error?.code === 'INVALID_PAYLOAD';
  },
  'quiz-unchecked': async (srv) => {
    const roomId = await createRoom(srv);
    const qid = (await adminOk(srv, 'POST', `/rooms/${roomId}/quiz`, { prompt: 'Q?', choices: ['a', 'b'], correct: 0, seconds: 30 }, 201))
      .body.qid;
    const u = await userWithToken(srv, 'Ann');
    await addMember(srv, roomId, u.uid);
    const s = await srv.connect('/', u.token);
    return (await ack(s, 'quiz:answer_submit', { questionId: qid, answer: 'a', timestamp: Date.now() })).error?.code === 'INVALID_PAYLOAD';
  },
  'mark-read-anyone': async (srv) => {
    const [ann, eve] = [await userWithToken(srv, 'Ann'), await userWithToken(srv, 'Eve')];
    const n = (await adminOk(srv, 'POST', `/users/${ann.uid}/notifications`, { kind: 'k', title: 't', body: 'b' }, 201)).body;
    const s = await srv.connect('/', eve.token);
    return (await ack(s, 'notification:mark_read', { notificationId: n.notification.nid })).error?.code === 'PERMISSION_DENIED';
  },
  'quiz-rank-wrong': async (srv) => {
    const roomId = await createRoom(srv);
    const qid = (await adminOk(srv, 'POST', `/rooms/${roomId}/quiz`, { prompt: 'Q?', choices: ['a', 'b'], correct: 0, seconds: 30 }, 201))
      .body.qid;
    await adminOk(srv, 'POST', `/quiz/${qid}/publish`, undefined, 200);
    const ranks = [];
    for (const name of ['Ann', 'Bob']) {
      const u = await userWithToken(srv, name);
      await addMember(srv, roomId, u.uid);
      const s = await srv.connect('/', u.token);
      ranks.push((await ack(s, 'quiz:answer_submit', { questionId: qid, answer: 'a', timestamp: Date.now() })).rank);
    }
    return ranks[0] === 1 && ranks[1] === 2;
  },
};

test('every bug has a probe, and README.md lists exactly the bugs, with the same words', () => {
  assert.deepEqual(Object.keys(PROBES).sort(), Object.keys(BUGS).sort());
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const section = readme.split('## Switchable bugs')[1]?.split('\n## ')[0] ?? '';
  const plain = (t) => t.replaceAll('`', '');
  const listed = Object.fromEntries([...section.matchAll(/^\| `([a-z-]+)` \| (.+) \|$/gm)].map((m) => [m[1], plain(m[2])]));
  assert.deepEqual(listed, Object.fromEntries(Object.entries(BUGS).map(([k, v]) => [k, plain(v)])));
});

describe('against a clean server, every probe conforms', () => {
  let srv;
  before(async () => (srv = await startServer(FLAGS)));
  after(async () => srv.stop());
  for (const [bug, probe] of Object.entries(PROBES)) {
    test(bug, async () => assert.equal(await probe(srv), true));
  }
});

describe('with each bug on, its probe fails', () => {
  for (const [bug, probe] of Object.entries(PROBES)) {
    test(bug, async () => {
      // One of them through the environment variable, the rest through --bug.
      const srv =
        bug === 'no-ack' ? await startServer(FLAGS, { env: { ALTSERVER_BUGS: bug } }) : await startServer([...FLAGS, '--bug', bug]);
      try {
        assert.equal(await probe(srv), false);
        assert.match(srv.stderr(), new RegExp(`deliberate bugs on: ${bug}`));
      } finally {
        await srv.stop();
      }
    });
  }
});
