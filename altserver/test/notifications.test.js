// Notifications: notification:received to the user's sockets on `/` only,
// and notification:mark_read with its ack.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ack, adminOk, collectUntilNotified, createRoom, isRecentIso, startServer, userWithToken, waitFor } from './helpers.js';

let srv;
before(async () => (srv = await startServer()));
after(async () => srv.stop());

async function send(uid, extra = {}) {
  const body = { kind: 'system', title: 'Hello', body: 'A message', data: { roomId: 'r-1' }, ...extra };
  return (await adminOk(srv, 'POST', `/users/${uid}/notifications`, body, 201)).body.notification;
}

test('notification:received reaches the user on / only, with the text fields', async () => {
  const ann = await userWithToken(srv, 'Ann');
  const bob = await userWithToken(srv, 'Bob');
  const roomId = await createRoom(srv);
  const root = await srv.connect('/', ann.token);
  const ns = await srv.connect(`/rooms/${roomId}`, ann.token);
  const other = await srv.connect('/', bob.token);
  const got = waitFor(root, 'notification:received');
  const onNs = [];
  ns.on('notification:received', (e) => onNs.push(e));
  let n;
  const onOther = await collectUntilNotified(srv, bob.uid, other, 'notification:received', async () => {
    n = await send(ann.uid);
  });
  // A room event sent after the notification reaches the namespace socket after anything sent before it.
  const roomEvent = waitFor(ns, 'room:updated');
  await adminOk(srv, 'PUT', `/rooms/${roomId}`, { title: 'x', isPrivate: false, status: 'draft' }, 200);
  await roomEvent;
  const ev = await got;
  assert.deepEqual(ev, {
    id: n.nid,
    type: 'system',
    title: 'Hello',
    message: 'A message',
    data: { roomId: 'r-1' },
    read: false,
    createdAt: ev.createdAt,
    timestamp: ev.timestamp,
  });
  assert.ok(isRecentIso(ev.createdAt) && isRecentIso(ev.timestamp));
  assert.deepEqual(onNs, []);
  assert.deepEqual(
    onOther.filter((x) => x.type !== 'marker'),
    [],
  );
});

test('notification:mark_read: {success, data: {notificationId, read}}; not yours is PERMISSION_DENIED; unknown is INVALID_PAYLOAD', async () => {
  const ann = await userWithToken(srv, 'Ann');
  const bob = await userWithToken(srv, 'Bob');
  const sa = await srv.connect('/', ann.token);
  const sb = await srv.connect('/', bob.token);
  const n = await send(ann.uid);
  assert.equal((await ack(sb, 'notification:mark_read', { notificationId: n.nid })).error.code, 'PERMISSION_DENIED');
  assert.deepEqual(await ack(sa, 'notification:mark_read', { notificationId: n.nid }), {
    success: true,
    data: { notificationId: n.nid, read: true },
  });
  const list = await adminOk(srv, 'GET', `/users/${ann.uid}/notifications`, undefined, 200);
  assert.equal(list.body.notifications.find((x) => x.nid === n.nid).read, true);
  assert.equal((await ack(sa, 'notification:mark_read', { notificationId: 'n-nope' })).error.code, 'INVALID_PAYLOAD');
});
