// Errors: every failure answers the ack {success:false, error:{code,message}}
// and emits `error` {code, message, details:{action, roomId}, timestamp};
// INVALID_PAYLOAD for every client event's bad payloads and unknown events.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ack, addMember, adminOk, createRoom, isRecentIso, startServer, userWithToken, waitFor } from './helpers.js';

let srv;
let user;
before(async () => {
  srv = await startServer();
  user = await userWithToken(srv, 'Ann');
});
after(async () => srv.stop());

test('a failure with an ack: the failing ack and the error event of the text', async () => {
  const roomId = await createRoom(srv, { isPrivate: true });
  const s = await srv.connect('/', user.token);
  const error = waitFor(s, 'error');
  const reply = await ack(s, 'room:subscribe', { roomId });
  assert.deepEqual(reply, { success: false, error: { code: 'PERMISSION_DENIED', message: reply.error.message } });
  assert.equal(typeof reply.error.message, 'string');
  const ev = await error;
  assert.deepEqual(ev, {
    code: 'PERMISSION_DENIED',
    message: reply.error.message,
    details: { action: 'room:subscribe', roomId },
    timestamp: ev.timestamp,
  });
  assert.ok(isRecentIso(ev.timestamp));
});

test('a failure without an ack: the error event alone', async () => {
  const s = await srv.connect('/', user.token);
  const error = waitFor(s, 'error');
  s.emit('room:subscribe', { roomId: 'r-nope' });
  const ev = await error;
  assert.equal(ev.code, 'ROOM_NOT_FOUND');
  assert.deepEqual(ev.details, { action: 'room:subscribe', roomId: 'r-nope' });
});

test('INVALID_PAYLOAD for bad payloads of every client event', async () => {
  const s = await srv.connect('/', user.token);
  const bad = {
    'room:subscribe': [undefined, null, 'r-1', [], {}, { roomId: 7 }, { roomId: '' }, { roomId: 'x'.repeat(129) }, { roomId: 'has space' }],
    'room:unsubscribe': [{}, { roomId: null }],
    'presence:get_online': [{}, { roomId: ['r-1'] }],
    'notification:mark_read': [{}, { notificationId: 1 }],
    'quiz:answer_submit': [
      {},
      { questionId: 'q-1', answer: 'Paris' },
      { questionId: 'q-1', answer: '', timestamp: 1 },
      { questionId: 'q-1', answer: 'Paris', timestamp: 'now' },
      { questionId: 'q-1', answer: 42, timestamp: 1 },
    ],
  };
  for (const [event, payloads] of Object.entries(bad)) {
    for (const p of payloads) {
      const reply = await ack(s, event, p);
      assert.equal(reply.success, false, `${event} ${JSON.stringify(p)}`);
      assert.equal(reply.error.code, 'INVALID_PAYLOAD', `${event} ${JSON.stringify(p)}`);
    }
  }
  // Two arguments, and a payload over 8 KiB.
  const two = await s.timeout(3000).emitWithAck('room:subscribe', { roomId: 'r-1' }, 'extra');
  assert.equal(two.error.code, 'INVALID_PAYLOAD');
  const big = await ack(s, 'room:subscribe', { roomId: 'r-1', pad: 'x'.repeat(9000) });
  assert.equal(big.error.code, 'INVALID_PAYLOAD');
});

test('an unknown event, and one named `error`, are INVALID_PAYLOAD with the event as action', async () => {
  const s = await srv.connect('/', user.token);
  for (const event of ['room:explode', 'error']) {
    const error = waitFor(s, 'error');
    const reply = await ack(s, event, {});
    assert.equal(reply.error.code, 'INVALID_PAYLOAD');
    assert.deepEqual((await error).details, { action: event });
  }
  assert.ok(s.connected);
});

test('ROOM_NOT_FOUND for presence and unsubscribe of an unknown room; a member may ask a private room', async () => {
  const roomId = await createRoom(srv);
  await addMember(srv, roomId, user.uid);
  const s = await srv.connect('/', user.token);
  assert.equal((await ack(s, 'presence:get_online', { roomId: 'r-gone' })).error.code, 'ROOM_NOT_FOUND');
  assert.equal((await ack(s, 'room:unsubscribe', { roomId: 'r-gone' })).error.code, 'ROOM_NOT_FOUND');
  await adminOk(srv, 'PUT', `/rooms/${roomId}`, { title: 'Room', isPrivate: true, status: 'draft' }, 200);
  assert.equal((await ack(s, 'presence:get_online', { roomId })).count, 0);
});

test('two CONNECTs for one namespace in one message: one socket, one connect_error', async () => {
  const base = `${srv.socket}/socket.io/?EIO=4&transport=polling`;
  const open = await (await fetch(base)).text();
  const { sid } = JSON.parse(open.slice(1));
  const connectPacket = `40${JSON.stringify({ token: user.token })}`;
  const post = await fetch(`${base}&sid=${sid}`, { method: 'POST', body: `${connectPacket}\x1e${connectPacket}` });
  assert.equal(await post.text(), 'ok');
  const packets = (await (await fetch(`${base}&sid=${sid}`)).text()).split('\x1e');
  assert.equal(packets.filter((p) => p.startsWith('40{"sid"')).length, 1, packets.join(' | '));
  assert.equal(packets.filter((p) => p.startsWith('44{"message":"Already connecting"')).length, 1, packets.join(' | '));
});
