// Rooms: subscribe/unsubscribe with their acks and events, room:updated,
// room:status_changed, room:deleted, the room namespace, private rooms.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ack, addMember, adminOk, collectUntilNotified, createRoom, isRecentIso, startServer, userWithToken, waitFor } from './helpers.js';

let srv;
before(async () => (srv = await startServer()));
after(async () => srv.stop());

test('room:subscribe answers {success, room} then room:subscribed', async () => {
  const ann = await userWithToken(srv, 'Ann');
  const roomId = await createRoom(srv, { title: 'New Year Lottery' });
  const s = await srv.connect('/', ann.token);
  const subscribed = waitFor(s, 'room:subscribed');
  const reply = await ack(s, 'room:subscribe', { roomId });
  assert.deepEqual(reply, { success: true, room: { id: roomId, name: 'New Year Lottery', status: 'draft' } });
  const ev = await subscribed;
  assert.equal(ev.roomId, roomId);
  assert.ok(isRecentIso(ev.timestamp), ev.timestamp);
  assert.match(roomId, /^r-[0-9a-f-]{36}$/);
});

test('room:unsubscribe answers {success, data: {roomId}}, sends room:unsubscribed and stops the room events', async () => {
  const ann = await userWithToken(srv, 'Ann');
  const roomId = await createRoom(srv);
  const s = await srv.connect('/', ann.token);
  await ack(s, 'room:subscribe', { roomId });
  const unsubscribed = waitFor(s, 'room:unsubscribed');
  assert.deepEqual(await ack(s, 'room:unsubscribe', { roomId }), { success: true, data: { roomId } });
  assert.equal((await unsubscribed).roomId, roomId);
  const updates = await collectUntilNotified(srv, ann.uid, s, 'room:updated', () =>
    adminOk(srv, 'PUT', `/rooms/${roomId}`, { title: 'Renamed', isPrivate: false, status: 'draft' }, 200),
  );
  assert.deepEqual(updates, []);
});

test('PUT of the room sends room:updated (changes, room) and room:status_changed', async () => {
  const ann = await userWithToken(srv, 'Ann');
  const roomId = await createRoom(srv, { title: 'Old' });
  const s = await srv.connect('/', ann.token);
  await ack(s, 'room:subscribe', { roomId });
  const updated = waitFor(s, 'room:updated');
  const changed = waitFor(s, 'room:status_changed');
  const put = await adminOk(srv, 'PUT', `/rooms/${roomId}`, { title: 'New', isPrivate: false, status: 'active' }, 200);
  assert.equal(put.body.title, 'New');
  const u = await updated;
  assert.deepEqual(
    { ...u, timestamp: undefined },
    {
      roomId,
      changes: { name: 'New', status: 'active' },
      room: { id: roomId, name: 'New', status: 'active' },
      timestamp: undefined,
    },
  );
  assert.ok(isRecentIso(u.timestamp));
  const c = await changed;
  assert.equal(c.oldStatus, 'draft');
  assert.equal(c.newStatus, 'active');
  assert.ok(isRecentIso(c.timestamp));
});

test('deleting a room sends room:deleted on / and on its namespace, then closes the namespace', async () => {
  const ann = await userWithToken(srv, 'Ann');
  const roomId = await createRoom(srv);
  const root = await srv.connect('/', ann.token);
  await ack(root, 'room:subscribe', { roomId });
  const ns = await srv.connect(`/rooms/${roomId}`, ann.token);
  const onRoot = waitFor(root, 'room:deleted');
  const onNs = waitFor(ns, 'room:deleted');
  const closed = waitFor(ns, 'disconnect');
  await adminOk(srv, 'DELETE', `/rooms/${roomId}`, undefined, 204);
  assert.equal((await onRoot).roomId, roomId);
  assert.equal((await onNs).roomId, roomId);
  assert.equal(await closed, 'io server disconnect');
  const reply = await ack(root, 'room:subscribe', { roomId });
  assert.equal(reply.error.code, 'ROOM_NOT_FOUND');
});

test('the room namespace gets the room events; another room gets none of them', async () => {
  const ann = await userWithToken(srv, 'Ann');
  const a = await createRoom(srv, { title: 'A' });
  const b = await createRoom(srv, { title: 'B' });
  const nsA = await srv.connect(`/rooms/${a}`, ann.token);
  const nsB = await srv.connect(`/rooms/${b}`, ann.token);
  const rootB = await srv.connect('/', ann.token);
  await ack(rootB, 'room:subscribe', { roomId: b });
  const gotA = waitFor(nsA, 'room:updated');
  const heard = [];
  nsB.on('room:updated', (e) => heard.push(['ns', e.roomId]));
  rootB.on('room:updated', (e) => heard.push(['root', e.roomId]));
  // B's own update comes after A's on both B sockets: by then a leak would be in.
  const ownNs = waitFor(nsB, 'room:updated');
  const ownRoot = waitFor(rootB, 'room:updated');
  await adminOk(srv, 'PUT', `/rooms/${a}`, { title: 'A2', isPrivate: false, status: 'draft' }, 200);
  await adminOk(srv, 'PUT', `/rooms/${b}`, { title: 'B2', isPrivate: false, status: 'draft' }, 200);
  await Promise.all([ownNs, ownRoot]);
  assert.equal((await gotA).roomId, a);
  assert.deepEqual(heard.sort(), [
    ['ns', b],
    ['root', b],
  ]);
});

test('a room namespace connection is not a / subscription and binds its socket to its room', async () => {
  const ann = await userWithToken(srv, 'Ann');
  const a = await createRoom(srv);
  const b = await createRoom(srv);
  const root = await srv.connect('/', ann.token);
  const ns = await srv.connect(`/rooms/${a}`, ann.token);
  const rootEvents = await collectUntilNotified(srv, ann.uid, root, 'room:updated', () =>
    adminOk(srv, 'PUT', `/rooms/${a}`, { title: 'x', isPrivate: false, status: 'draft' }, 200),
  );
  assert.deepEqual(rootEvents, []);
  const reply = await ack(ns, 'room:subscribe', { roomId: b });
  assert.equal(reply.success, false);
  assert.equal(reply.error.code, 'PERMISSION_DENIED');
  assert.deepEqual(await ack(ns, 'room:subscribe', { roomId: a }), { success: true, room: { id: a, name: 'x', status: 'draft' } });
});

test('an unknown room: ROOM_NOT_FOUND in the ack, and a connect_error on its namespace', async () => {
  const ann = await userWithToken(srv, 'Ann');
  const s = await srv.connect('/', ann.token);
  const reply = await ack(s, 'room:subscribe', { roomId: 'r-nope' });
  assert.equal(reply.success, false);
  assert.equal(reply.error.code, 'ROOM_NOT_FOUND');
  await assert.rejects(srv.connect('/rooms/r-nope', ann.token), (err) => {
    assert.equal(err.message, 'Room not found');
    assert.deepEqual(err.data, { code: 'ROOM_NOT_FOUND', roomId: 'r-nope' });
    return true;
  });
});

test('a private room admits its members only, on / and on its namespace', async () => {
  const ann = await userWithToken(srv, 'Ann');
  const roomId = await createRoom(srv, { isPrivate: true });
  const s = await srv.connect('/', ann.token);
  const refused = await ack(s, 'room:subscribe', { roomId });
  assert.equal(refused.error.code, 'PERMISSION_DENIED');
  await assert.rejects(srv.connect(`/rooms/${roomId}`, ann.token), (err) => err.data?.code === 'PERMISSION_DENIED');
  await addMember(srv, roomId, ann.uid, 'mod');
  assert.equal((await ack(s, 'room:subscribe', { roomId })).success, true);
  await srv.connect(`/rooms/${roomId}`, ann.token);
});

test('making a room private unsubscribes the listeners who are not members', async () => {
  const ann = await userWithToken(srv, 'Ann');
  const bob = await userWithToken(srv, 'Bob');
  const roomId = await createRoom(srv);
  await addMember(srv, roomId, bob.uid);
  const sa = await srv.connect('/', ann.token);
  const sb = await srv.connect('/', bob.token);
  await ack(sa, 'room:subscribe', { roomId });
  await ack(sb, 'room:subscribe', { roomId });
  const annOut = waitFor(sa, 'room:unsubscribed');
  await adminOk(srv, 'PUT', `/rooms/${roomId}`, { title: 'Room', isPrivate: true, status: 'draft' }, 200);
  assert.equal((await annOut).roomId, roomId);
  const bobGets = waitFor(sb, 'room:updated');
  const annGets = await collectUntilNotified(srv, ann.uid, sa, 'room:updated', () =>
    adminOk(srv, 'PUT', `/rooms/${roomId}`, { title: 'Secret', isPrivate: true, status: 'draft' }, 200),
  );
  assert.equal((await bobGets).changes.name, 'Secret');
  assert.deepEqual(annGets, []);
});
