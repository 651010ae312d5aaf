// Presence: one presence:user_online per user and room however many sockets,
// presence:user_offline when the last one stops listening, and
// presence:get_online in the text's exact shape.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ack, addMember, barrier, createRoom, isRecentIso, startServer, userWithToken, waitFor } from './helpers.js';

let srv;
before(async () => (srv = await startServer()));
after(async () => srv.stop());

test('online once for two sockets (one on /, one on the namespace); offline when the last leaves', async () => {
  const roomId = await createRoom(srv);
  const w = await userWithToken(srv, 'Watcher');
  const ws = await srv.connect('/', w.token);
  await ack(ws, 'room:subscribe', { roomId });
  const ann = await userWithToken(srv, 'Ann');
  const on = [];
  const offlines = [];
  ws.on('presence:user_online', (e) => on.push(e));
  ws.on('presence:user_offline', (e) => offlines.push(e));
  const a1 = await srv.connect('/', ann.token);
  await ack(a1, 'room:subscribe', { roomId });
  const a2 = await srv.connect(`/rooms/${roomId}`, ann.token);
  await ack(a1, 'room:unsubscribe', { roomId });
  await barrier(srv, w.uid, ws);
  assert.equal(on.length, 1);
  assert.deepEqual(on[0], { roomId, userId: ann.uid, user: { id: ann.uid, name: 'Ann', avatar: ann.avatar }, timestamp: on[0].timestamp });
  assert.ok(isRecentIso(on[0].timestamp));
  assert.deepEqual(offlines, [], 'the namespace socket still listens');
  const off = waitFor(ws, 'presence:user_offline');
  a2.disconnect();
  const ev = await off;
  assert.deepEqual(ev, { roomId, userId: ann.uid, timestamp: ev.timestamp });
});

test('presence:get_online answers {roomId, users, count} without success', async () => {
  const roomId = await createRoom(srv, { isPrivate: true });
  const ann = await userWithToken(srv, 'Ann');
  const eve = await userWithToken(srv, 'Eve');
  await addMember(srv, roomId, ann.uid);
  const sa = await srv.connect('/', ann.token);
  await ack(sa, 'room:subscribe', { roomId });
  const reply = await ack(sa, 'presence:get_online', { roomId });
  assert.deepEqual(reply, {
    roomId,
    users: [{ id: ann.uid, name: 'Ann', avatar: ann.avatar, connectedAt: reply.users[0].connectedAt }],
    count: 1,
  });
  assert.ok(isRecentIso(reply.users[0].connectedAt));
  const se = await srv.connect('/', eve.token);
  const denied = await ack(se, 'presence:get_online', { roomId });
  assert.deepEqual(denied, { success: false, error: { code: 'PERMISSION_DENIED', message: denied.error.message } });
});
