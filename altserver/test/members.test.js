// Participants (members on the admin API): joined, updated, left, and the
// end of a removed member's subscription to a private room.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  ack,
  addMember,
  adminCall,
  adminOk,
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

test('participant:joined carries the participant with its user, role and joinedAt', async () => {
  const roomId = await createRoom(srv);
  const { s } = await subscribedUser(srv, roomId);
  const ann = await userWithToken(srv, 'Ann');
  const joined = waitFor(s, 'participant:joined');
  const member = await addMember(srv, roomId, ann.uid, 'player');
  assert.match(member.memberId, /^m-/);
  const ev = await joined;
  assert.deepEqual(ev, {
    roomId,
    participant: {
      id: member.memberId,
      userId: ann.uid,
      role: 'participant',
      user: { id: ann.uid, name: 'Ann', avatar: ann.avatar },
      joinedAt: ev.participant.joinedAt,
    },
    timestamp: ev.timestamp,
  });
  assert.ok(isRecentIso(ev.participant.joinedAt));
  assert.ok(isRecentIso(ev.timestamp));
  assert.equal((await adminCall(srv, 'POST', `/rooms/${roomId}/members`, { uid: ann.uid, kind: 'player' })).status, 409);
});

test('participant:updated: kind mod is role moderator', async () => {
  const roomId = await createRoom(srv);
  const { s, uid } = await subscribedUser(srv, roomId);
  const ann = await userWithToken(srv, 'Ann');
  const member = await addMember(srv, roomId, ann.uid, 'player');
  const updated = waitFor(s, 'participant:updated');
  await adminOk(srv, 'PATCH', `/rooms/${roomId}/members/${ann.uid}`, { kind: 'mod' }, 200);
  const ev = await updated;
  assert.deepEqual(ev, {
    roomId,
    participantId: member.memberId,
    changes: { role: 'moderator' },
    participant: { id: member.memberId, userId: ann.uid, role: 'moderator', user: { id: ann.uid, name: 'Ann' } },
    timestamp: ev.timestamp,
  });
  // The same kind again changes nothing and sends nothing.
  const none = await collectUntilNotified(srv, uid, s, 'participant:updated', () =>
    adminOk(srv, 'PATCH', `/rooms/${roomId}/members/${ann.uid}`, { kind: 'mod' }, 200),
  );
  assert.deepEqual(none, []);
});

test('participant:left, and a removed member of a private room stops hearing it', async () => {
  const roomId = await createRoom(srv, { isPrivate: true });
  const ann = await userWithToken(srv, 'Ann');
  const bob = await userWithToken(srv, 'Bob');
  const member = await addMember(srv, roomId, ann.uid);
  await addMember(srv, roomId, bob.uid);
  const sa = await srv.connect('/', ann.token);
  const nsa = await srv.connect(`/rooms/${roomId}`, ann.token);
  const sb = await srv.connect('/', bob.token);
  await ack(sa, 'room:subscribe', { roomId });
  await ack(sb, 'room:subscribe', { roomId });
  const left = waitFor(sb, 'participant:left');
  const annLeft = waitFor(sa, 'participant:left');
  const annOut = waitFor(sa, 'room:unsubscribed');
  const nsGone = waitFor(nsa, 'disconnect');
  await adminOk(srv, 'DELETE', `/rooms/${roomId}/members/${ann.uid}`, undefined, 204);
  const ev = await left;
  assert.deepEqual(ev, { roomId, participantId: member.memberId, userId: ann.uid, timestamp: ev.timestamp });
  assert.equal((await annLeft).userId, ann.uid, 'the member hears their own leaving');
  assert.equal((await annOut).roomId, roomId);
  assert.equal(await nsGone, 'io server disconnect');
  const bobGets = waitFor(sb, 'room:updated');
  const annGets = await collectUntilNotified(srv, ann.uid, sa, 'room:updated', () =>
    adminOk(srv, 'PUT', `/rooms/${roomId}`, { title: 'After', isPrivate: true, status: 'active' }, 200),
  );
  await bobGets;
  assert.deepEqual(annGets, []);
});

test('deleting a user sends participant:left to their rooms and disconnects them', async () => {
  const roomId = await createRoom(srv);
  const { s } = await subscribedUser(srv, roomId);
  const ann = await userWithToken(srv, 'Ann');
  await addMember(srv, roomId, ann.uid);
  const sa = await srv.connect('/', ann.token);
  const left = waitFor(s, 'participant:left');
  const gone = waitFor(sa, 'disconnect');
  await adminOk(srv, 'DELETE', `/users/${ann.uid}`, undefined, 204);
  assert.equal((await left).userId, ann.uid);
  await gone;
  assert.equal((await adminCall(srv, 'GET', `/users/${ann.uid}`)).status, 404);
});
