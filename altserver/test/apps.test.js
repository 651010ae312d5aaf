// Application events: POST /api/rooms/:roomId/events with the app's key
// and the id the server assigned; `realtime:publish`; the `{appId}:`
// prefix; 10 per second per room; 600 per minute per app.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  adminOk,
  barrier,
  collectUntilNotified,
  createRoom,
  isRecentIso,
  startServer,
  subscribedUser,
  userWithToken,
  waitFor,
} from './helpers.js';

let srv;
before(async () => (srv = await startServer()));
after(async () => srv.stop());

async function createApp(label, scopes = ['realtime:publish']) {
  return (await adminOk(srv, 'POST', '/apps', { label, scopes }, 201)).body;
}

async function publish(app, roomId, event, data, { key = app.apiKey, appId = app.appId } = {}) {
  const res = await fetch(`${srv.socket}/api/rooms/${roomId}/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'x-app-id': appId, 'content-type': 'application/json' },
    body: JSON.stringify({ event, data }),
  });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

test('the server assigns the app id; an event under its prefix reaches / and the namespace with the data exactly as sent, then {timestamp}', async () => {
  const app = await createApp('Lottery');
  assert.match(app.appId, /^lottery-[0-9a-f]{6}$/);
  assert.match(app.apiKey, /^ak_/);
  const roomId = await createRoom(srv);
  const { s } = await subscribedUser(srv, roomId);
  const u = await userWithToken(srv, 'Ns');
  const ns = await srv.connect(`/rooms/${roomId}`, u.token);
  const event = `${app.appId}:draw_started`;
  const data = { drawNumber: 1, totalPrizes: 10, estimatedDuration: 300, nested: { list: [1, 'two', null] } };
  const onRoot = waitFor(s, event, { all: true });
  const onNs = waitFor(ns, event, { all: true });
  const r = await publish(app, roomId, event, data);
  assert.equal(r.status, 202);
  const [rootData, meta] = await onRoot;
  assert.deepEqual(rootData, data);
  assert.deepEqual(Object.keys(meta), ['timestamp']);
  assert.ok(isRecentIso(meta.timestamp));
  assert.deepEqual(await onNs, [data, meta]);
});

test('refusals: 401 bad key or app id, 403 APP_PERMISSION_DENIED without the scope or outside the prefix, 404 unknown room, 400 bad body', async () => {
  const app = await createApp('Quiz');
  const mute = await createApp('Mute', []);
  const roomId = await createRoom(srv);
  const { s, uid } = await subscribedUser(srv, roomId);
  const heard = [];
  s.onAny((ev) => heard.push(ev));
  const ok = `${app.appId}:ping`;
  const cases = [
    [await publish(app, roomId, ok, {}, { key: 'ak_wrong' }), 401, 'AUTHENTICATION_FAILED'],
    [await publish(app, roomId, ok, {}, { appId: mute.appId }), 401, 'AUTHENTICATION_FAILED'],
    [await publish(mute, roomId, `${mute.appId}:ping`, {}), 403, 'APP_PERMISSION_DENIED'],
    [await publish(app, roomId, 'lottery:ping', {}), 403, 'APP_PERMISSION_DENIED'],
    [await publish(app, roomId, `${app.appId}:`, {}), 403, 'APP_PERMISSION_DENIED'],
    [await publish(app, 'r-nope', ok, {}), 404, 'ROOM_NOT_FOUND'],
    [await publish(app, roomId, 'has space', {}), 400, 'INVALID_PAYLOAD'],
    [await publish(app, roomId, ok, undefined), 400, 'INVALID_PAYLOAD'],
  ];
  for (const [r, status, code] of cases) {
    assert.equal(r.status, status, JSON.stringify(r.body));
    assert.equal(r.body.code, code);
    assert.equal(r.headers.get('content-type'), 'application/problem+json');
  }
  await barrier(srv, uid, s);
  assert.deepEqual(
    heard.filter((e) => e !== 'notification:received'),
    [],
  );
  // A deleted app's key stops working.
  await adminOk(srv, 'DELETE', `/apps/${app.appId}`, undefined, 204);
  assert.equal((await publish(app, roomId, ok, {})).status, 401);
});

test('10 events per second per room: the 11th is 429 and not delivered', async () => {
  const app = await createApp('Burst');
  const roomId = await createRoom(srv);
  const { s, uid } = await subscribedUser(srv, roomId);
  const event = `${app.appId}:tick`;
  const statuses = [];
  const got = await collectUntilNotified(srv, uid, s, event, async () => {
    for (let i = 0; i < 11; i++) statuses.push((await publish(app, roomId, event, { i })).status);
  });
  assert.deepEqual(statuses, [...Array(10).fill(202), 429]);
  assert.deepEqual(
    got.map(([d]) => d.i),
    [...Array(10).keys()],
  );
  // Another room is not limited by this one.
  const other = await createRoom(srv);
  assert.equal((await publish(app, other, event, {})).status, 202);
});

test('600 events per minute per app: the 601st is 429 RATE_LIMIT_EXCEEDED with Retry-After', async () => {
  const app = await createApp('Busy');
  const rooms = [];
  for (let i = 0; i < 61; i++) rooms.push(await createRoom(srv));
  const event = `${app.appId}:x`;
  let accepted = 0;
  for (let i = 0; i < 600; i++) if ((await publish(app, rooms[Math.floor(i / 10)], event, i)).status === 202) accepted += 1;
  assert.equal(accepted, 600);
  const r = await publish(app, rooms[60], event, 600);
  assert.equal(r.status, 429);
  assert.equal(r.body.code, 'RATE_LIMIT_EXCEEDED');
  assert.ok(Number(r.headers.get('retry-after')) >= 1);
});
