// Switchable bugs: for every bug of bugs.js, one probe that answers "does
// the server conform here?". Each probe must say yes against a clean
// server and no against a server with just that bug on, so every bug is
// proven to break what it claims, and the probe to notice it.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { BUGS } from '../bugs.js';
import { ack, addMember, adminOk, collect, connect, createRoom, isRecentIso, signToken, sleep, startServer, userWithToken, waitFor } from './helpers.js';

// Shared by the clean and the bugged servers: a short client window, a short grace.
const FLAGS = ['--client-rate-limit', '5', '--client-rate-window-ms', '400', '--token-grace', '1'];

const put = (srv, roomId, title, isPrivate = false) => adminOk(srv, 'PUT', `/rooms/${roomId}`, { title, isPrivate, status: 'active' }, 200);
const refusedConnect = (p) => p.then((s) => (s.disconnect(), false), () => true);

async function subscribedUser(srv, roomId, name = 'Ann') {
  const u = await userWithToken(srv, name);
  const s = await srv.connect('/', u.token);
  await ack(s, 'room:subscribe', { roomId });
  return { ...u, s };
}

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
  'root-no-auth-check-expiry': async (srv) => {
    const u = await userWithToken(srv, 'Ann', { ttl: -10 });
    return refusedConnect(connect(`${srv.socket}/`, u.token));
  },
  'leak-rooms': async (srv) => {
    const roomId = await createRoom(srv);
    const u = await userWithToken(srv, 'Ann');
    const s = await srv.connect('/', u.token);
    const got = collect(s, 'room:updated');
    await put(srv, roomId, 'x');
    return (await got).length === 0;
  },
  'leak-namespaces': async (srv) => {
    const [a, b] = [await createRoom(srv), await createRoom(srv)];
    const u = await userWithToken(srv, 'Ann');
    const s = await srv.connect(`/rooms/${b}`, u.token);
    const got = collect(s, 'room:updated');
    await put(srv, a, 'x');
    return (await got).length === 0;
  },
  'unsubscribe-keeps': async (srv) => {
    const roomId = await createRoom(srv);
    const { s } = await subscribedUser(srv, roomId);
    assert.equal((await ack(s, 'room:unsubscribe', { roomId })).success, true);
    const got = collect(s, 'room:updated');
    await put(srv, roomId, 'x');
    return (await got).length === 0;
  },
  'revocation-ignores-live': async (srv) => {
    const u = await userWithToken(srv, 'Ann', { jti: 'probe-jti' });
    const s = await srv.connect('/', u.token);
    const gone = waitFor(s, 'disconnect', { timeout: 1000 }).then(() => true, () => false);
    await adminOk(srv, 'POST', '/revocations', { jti: 'probe-jti' }, 201);
    return gone;
  },
  'removal-keeps': async (srv) => {
    const roomId = await createRoom(srv, { isPrivate: true });
    const u = await userWithToken(srv, 'Ann');
    await addMember(srv, roomId, u.uid);
    const s = await srv.connect('/', u.token);
    await ack(s, 'room:subscribe', { roomId });
    await adminOk(srv, 'DELETE', `/rooms/${roomId}/members/${u.uid}`, undefined, 204);
    const got = collect(s, 'room:updated');
    await put(srv, roomId, 'x', true);
    return (await got).length === 0;
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
    const subscribed = collect(s, 'room:subscribed');
    assert.equal((await ack(s, 'room:subscribe', { roomId })).error?.code, 'RATE_LIMIT_EXCEEDED');
    return (await subscribed).length === 0;
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
    const { s } = await subscribedUser(srv, roomId);
    const got = collect(s, 'room:updated');
    await put(srv, roomId, 'x');
    return (await got).length === 1;
  },
  'no-presence-offline': async (srv) => {
    const roomId = await createRoom(srv);
    const { s } = await subscribedUser(srv, roomId, 'Watcher');
    const other = await subscribedUser(srv, roomId, 'Ann');
    const offline = waitFor(s, 'presence:user_offline', { timeout: 1000 }).then(() => true, () => false);
    other.s.disconnect();
    return offline;
  },
  'no-token-expired': async (srv) => {
    const u = await userWithToken(srv, 'Ann', { ttl: 1 });
    const s = await srv.connect('/', u.token);
    return waitFor(s, 'token:expired', { timeout: 2500 }).then(() => true, () => false);
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
    return connect(`${srv.socket}/`, accessToken).then((s) => (s.disconnect(), true), () => false);
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
    return ack(s, 'room:subscribe', { roomId: await createRoom(srv) }, 500).then(() => true, () => false);
  },
  'app-prefix-unchecked': async (srv) => (await (await publisher(srv))(await createRoom(srv), 'lottery:draw_started')) === 403,
  'app-rate-unlimited': async (srv) => {
    const publish = await publisher(srv);
    const roomId = await createRoom(srv);
    const statuses = [];
    for (let i = 0; i < 11; i++) statuses.push(await publish(roomId, 'APP:tick'));
    return statuses[10] === 429;
  },
  'quiz-rank-wrong': async (srv) => {
    const roomId = await createRoom(srv);
    const qid = (await adminOk(srv, 'POST', `/rooms/${roomId}/quiz`, { prompt: 'Q?', choices: ['a', 'b'], correct: 0, seconds: 30 }, 201)).body.qid;
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

test('every bug has a probe, and README.md lists exactly the bugs', () => {
  assert.deepEqual(Object.keys(PROBES).sort(), Object.keys(BUGS).sort());
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const section = readme.split('## Switchable bugs')[1]?.split('\n## ')[0] ?? '';
  const listed = [...section.matchAll(/^\| `([a-z-]+)` \|/gm)].map((m) => m[1]);
  assert.deepEqual(listed.sort(), Object.keys(BUGS).sort());
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
      const srv = bug === 'no-ack' ? await startServer(FLAGS, { env: { ALTSERVER_BUGS: bug } }) : await startServer([...FLAGS, '--bug', bug]);
      try {
        assert.equal(await probe(srv), false);
        assert.match(srv.stderr(), new RegExp(`deliberate bugs on: ${bug}`));
      } finally {
        await srv.stop();
      }
    });
  }
});
