// Prizes (rewards on the admin API) and winners: prize created, updated,
// deleted; the two-step draw with winner:selected, prize:updated and the
// winner's notification; winner:removed.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
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

test('prize:created, prize:updated and prize:deleted', async () => {
  const roomId = await createRoom(srv);
  const { s } = await subscribedUser(srv, roomId);
  const created = waitFor(s, 'prize:created');
  const r = await adminOk(
    srv,
    'POST',
    `/rooms/${roomId}/rewards`,
    { label: 'iPhone', stock: 1, details: 'Latest', image: 'https://img.example/p.png' },
    201,
  );
  const rewardId = r.body.rewardId;
  const c = await created;
  assert.deepEqual(c, {
    roomId,
    prize: {
      id: rewardId,
      name: 'iPhone',
      description: 'Latest',
      imageUrl: 'https://img.example/p.png',
      quantity: 1,
      quantityRemaining: 1,
      createdAt: c.prize.createdAt,
    },
    timestamp: c.timestamp,
  });
  assert.ok(isRecentIso(c.prize.createdAt));

  const updated = waitFor(s, 'prize:updated');
  await adminOk(srv, 'PATCH', `/rooms/${roomId}/rewards/${rewardId}`, { stock: 2 }, 200);
  const u = await updated;
  assert.equal(u.prizeId, rewardId);
  assert.deepEqual(u.changes, { quantity: 2, quantityRemaining: 2 });
  assert.equal(u.prize.quantity, 2);

  const deleted = waitFor(s, 'prize:deleted');
  await adminOk(srv, 'DELETE', `/rooms/${roomId}/rewards/${rewardId}`, undefined, 204);
  const d = await deleted;
  assert.deepEqual(d, { roomId, prizeId: rewardId, timestamp: d.timestamp });
});

test('a reward without details or image has null description and imageUrl', async () => {
  const roomId = await createRoom(srv);
  const { s } = await subscribedUser(srv, roomId);
  const created = waitFor(s, 'prize:created');
  await adminOk(srv, 'POST', `/rooms/${roomId}/rewards`, { label: 'Mug', stock: 3 }, 201);
  const { prize } = await created;
  assert.equal(prize.description, null);
  assert.equal(prize.imageUrl, null);
});

test('two-step draw: picks first, then the commit announces winners, updates the prize and notifies the winner', async () => {
  const roomId = await createRoom(srv);
  const { s, uid } = await subscribedUser(srv, roomId);
  const ann = await userWithToken(srv, 'Ann');
  const member = await addMember(srv, roomId, ann.uid, 'player');
  const mod = await userWithToken(srv, 'Mod');
  await addMember(srv, roomId, mod.uid, 'mod');
  const annSocket = await srv.connect('/', ann.token);
  const reward = (
    await adminOk(srv, 'POST', `/rooms/${roomId}/rewards`, { label: 'Grand Prize', stock: 1, image: 'https://img.example/g.png' }, 201)
  ).body;

  let draw;
  const early = await collectUntilNotified(srv, uid, s, 'winner:selected', async () => {
    draw = await adminOk(srv, 'POST', `/rooms/${roomId}/draws`, { rewardId: reward.rewardId }, 201);
  });
  assert.deepEqual(draw.body.picks, [{ memberId: member.memberId, uid: ann.uid }], 'moderators are not eligible');
  assert.deepEqual(early, [], 'nothing is announced before the commit');
  // The pick holds the only unit.
  assert.equal((await adminCall(srv, 'POST', `/rooms/${roomId}/draws`, { rewardId: reward.rewardId })).status, 409);

  const selected = waitFor(s, 'winner:selected');
  const prizeUpdated = waitFor(s, 'prize:updated');
  const notified = waitFor(annSocket, 'notification:received');
  const commit = await adminOk(srv, 'POST', `/draws/${draw.body.drawId}/commit`, undefined, 200);
  const [w] = commit.body.winners;
  const ev = await selected;
  assert.deepEqual(ev, {
    roomId,
    winner: {
      id: w.winnerId,
      participantId: member.memberId,
      prizeId: reward.rewardId,
      participant: { id: member.memberId, user: { id: ann.uid, name: 'Ann', avatar: ann.avatar } },
      prize: { id: reward.rewardId, name: 'Grand Prize', imageUrl: 'https://img.example/g.png' },
      createdAt: ev.winner.createdAt,
    },
    timestamp: ev.timestamp,
  });
  assert.deepEqual((await prizeUpdated).changes, { quantityRemaining: 0 });
  const n = await notified;
  assert.equal(n.type, 'winner_selected');
  assert.deepEqual(n.data, { roomId, winnerId: w.winnerId, prizeId: reward.rewardId });
  assert.equal(n.read, false);
  // A committed draw is gone.
  assert.equal((await adminCall(srv, 'POST', `/draws/${draw.body.drawId}/commit`)).status, 404);

  const removed = waitFor(s, 'winner:removed');
  const back = waitFor(s, 'prize:updated');
  await adminOk(srv, 'DELETE', `/rooms/${roomId}/winners/${w.winnerId}`, undefined, 204);
  const r = await removed;
  assert.deepEqual(r, { roomId, winnerId: w.winnerId, participantId: member.memberId, prizeId: reward.rewardId, timestamp: r.timestamp });
  assert.deepEqual((await back).changes, { quantityRemaining: 1 });
});

test('a draw for more than the eligible players or the stock is 409; a cancelled draw frees its units', async () => {
  const roomId = await createRoom(srv);
  const ann = await userWithToken(srv, 'Ann');
  await addMember(srv, roomId, ann.uid);
  const reward = (await adminOk(srv, 'POST', `/rooms/${roomId}/rewards`, { label: 'Pen', stock: 5 }, 201)).body;
  assert.equal((await adminCall(srv, 'POST', `/rooms/${roomId}/draws`, { rewardId: reward.rewardId, count: 2 })).status, 409);
  assert.equal((await adminCall(srv, 'POST', `/rooms/${roomId}/draws`, { rewardId: reward.rewardId, count: 6 })).status, 409);
  const d = await adminOk(srv, 'POST', `/rooms/${roomId}/draws`, { rewardId: reward.rewardId }, 201);
  await adminOk(srv, 'DELETE', `/draws/${d.body.drawId}`, undefined, 204);
  await adminOk(srv, 'POST', `/rooms/${roomId}/draws`, { rewardId: reward.rewardId }, 201);
});
