/**
 * The admin API (`/admin/v2`, its own port, `Authorization: Token <key>`):
 * how an operator or a test run creates users, rooms, members, rewards,
 * draws, quiz questions, notifications and applications, and revokes
 * tokens. Each change that the protocol has an event for is broadcast here,
 * after the store has made it.
 *
 * Its shapes are deliberately those of someone else's API, not our
 * reference server's: a form body for users, `Location` instead of a body
 * for rooms, `PUT` of the whole room, members and rewards instead of
 * participants and prizes, a two-step draw, server-assigned app ids,
 * 422 for validation failures. ADMIN-API.md lists every endpoint.
 *
 * @module admin
 */

import { createHash, timingSafeEqual } from 'node:crypto';
import { HttpError, compileRoutes, findRoute, mediaType, readBody, requestPath, sendJson } from './http.js';
import {
  EV,
  ID_RE,
  LIMITS,
  ROOM_STATUSES,
  participantUpdatedView,
  participantView,
  prizeView,
  questionView,
  roomView,
  winnerView,
} from './protocol.js';
import { DRAW_TTL_MS, MAX, StoreError } from './store.js';

const PREFIX = '/admin/v2';
const STORE_STATUS = { not_found: 404, conflict: 409, full: 409, invalid: 422 };

const unprocessable = (field, detail) => new HttpError(422, 'validation_failed', detail, { field });
const iso = (ms) => new Date(ms).toISOString();

/** Field checks: each returns the value or throws 422 naming the field. */
const check = {
  text: (max) => (v, f) => {
    if (typeof v !== 'string' || v.trim() === '' || v.length > max)
      throw unprocessable(f, `\`${f}\` must be a non-empty string of at most ${max} characters`);
    return v;
  },
  id: (v, f) => {
    if (typeof v !== 'string' || !ID_RE.test(v)) throw unprocessable(f, `\`${f}\` must match ${ID_RE.source}`);
    return v;
  },
  bool: (v, f) => {
    if (typeof v !== 'boolean') throw unprocessable(f, `\`${f}\` must be true or false`);
    return v;
  },
  int: (min, max) => (v, f) => {
    if (!Number.isInteger(v) || v < min || v > max) throw unprocessable(f, `\`${f}\` must be an integer from ${min} to ${max}`);
    return v;
  },
  oneOf: (values) => (v, f) => {
    if (!values.includes(v)) throw unprocessable(f, `\`${f}\` must be one of ${values.join(', ')}`);
    return v;
  },
  texts: (maxItems, maxLen) => (v, f) => {
    if (!Array.isArray(v) || v.length === 0 || v.length > maxItems)
      throw unprocessable(f, `\`${f}\` must be a list of 1 to ${maxItems} strings`);
    v.forEach((x, i) => check.text(maxLen)(x, `${f}[${i}]`));
    return v;
  },
  object: (v, f) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw unprocessable(f, `\`${f}\` must be a JSON object`);
    return v;
  },
};

/** `body[f]` through `fn`; absent (undefined) is allowed when `optional`. */
function field(body, f, fn, { optional = false } = {}) {
  const v = body[f];
  if (v === undefined) {
    if (optional) return undefined;
    throw unprocessable(f, `\`${f}\` is required`);
  }
  return fn(v, f);
}

async function jsonBody(req) {
  if (mediaType(req) !== 'application/json') throw new HttpError(415, 'unsupported_media_type', 'send application/json');
  const raw = await readBody(req);
  let body;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new HttpError(400, 'bad_json', 'the body is not JSON');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new HttpError(400, 'bad_json', 'the body must be a JSON object');
  return body;
}

async function formBody(req) {
  if (mediaType(req) !== 'application/x-www-form-urlencoded')
    throw new HttpError(415, 'unsupported_media_type', 'send application/x-www-form-urlencoded');
  const raw = await readBody(req);
  return Object.fromEntries(new URLSearchParams(raw.toString('utf8')));
}

const userRep = (u) => ({ uid: u.uid, display_name: u.name, avatar_url: u.avatar, created_at: iso(u.createdAt) });
const roomRep = (r) => ({
  id: r.id,
  title: r.title,
  isPrivate: r.isPrivate,
  status: r.status,
  createdAt: iso(r.createdAt),
  memberCount: r.members.size,
});
const memberRep = (m) => ({ memberId: m.id, uid: m.uid, kind: m.kind, joinedAt: iso(m.joinedAt) });
const rewardRep = (r) => ({
  rewardId: r.id,
  label: r.label,
  details: r.details,
  image: r.image,
  stock: r.stock,
  left: r.stock - r.awarded,
  createdAt: iso(r.createdAt),
});
const notificationRep = (n) => ({
  nid: n.id,
  kind: n.kind,
  title: n.title,
  body: n.body,
  data: n.data,
  read: n.read,
  createdAt: iso(n.createdAt),
});

/**
 * @param {object} o
 * @param {import('./store.js').Store} o.store
 * @param {import('./auth.js').Auth} o.auth
 * @param {import('./realtime.js').Realtime} o.realtime
 * @param {ReturnType<import('./api.js').publicApi>} o.api
 * @param {import('./bugs.js').Bugs} o.bugs
 * @param {string} o.adminKey
 */
export function adminApi({ store, auth, realtime, api, bugs, adminKey }) {
  const keyDigest = createHash('sha256').update(`Token ${adminKey}`).digest();
  const authorized = (req) =>
    timingSafeEqual(
      createHash('sha256')
        .update(req.headers.authorization ?? '')
        .digest(),
      keyDigest,
    );
  const rt = realtime;
  const ts = () => rt.stamp();

  // --- users, notifications, revocations ---

  async function createUser(req, res) {
    const form = await formBody(req);
    const user = store.addUser({
      uid: field(form, 'uid', check.id, { optional: true }),
      name: field(form, 'display_name', check.text(LIMITS.nameChars)),
      avatar: field(form, 'avatar_url', check.text(LIMITS.urlChars), { optional: true }),
    });
    sendJson(res, 201, { user: userRep(user) }, { location: `${PREFIX}/users/${encodeURIComponent(user.uid)}` });
  }

  async function getUser(req, res, { uid }) {
    sendJson(res, 200, { user: userRep(store.user(uid)) });
  }

  async function deleteUser(req, res, { uid }) {
    const { left } = store.deleteUser(uid);
    for (const { room, member } of left) {
      rt.roomEmit(room.id, EV.PARTICIPANT_LEFT, { roomId: room.id, participantId: member.id, userId: uid, timestamp: ts() });
    }
    // A user created again under the same uid must not inherit old tokens.
    auth.revokeUser(uid);
    rt.disconnectUser(uid);
    sendJson(res, 204);
  }

  async function notifyUser(req, res, { uid }) {
    const body = await jsonBody(req);
    const n = store.addNotification(uid, {
      kind: field(body, 'kind', check.text(LIMITS.nameChars)),
      title: field(body, 'title', check.text(LIMITS.nameChars)),
      body: field(body, 'body', check.text(LIMITS.textChars)),
      data: field(body, 'data', check.object, { optional: true }) ?? {},
    });
    rt.notify(n);
    sendJson(res, 201, { notification: notificationRep(n) });
  }

  async function listNotifications(req, res, { uid }) {
    store.user(uid);
    sendJson(res, 200, { notifications: [...(store.notifications.get(uid)?.values() ?? [])].map(notificationRep) });
  }

  async function revoke(req, res) {
    const body = await jsonBody(req);
    if ((body.jti === undefined) === (body.uid === undefined)) throw unprocessable('jti', 'give exactly one of `jti` and `uid`');
    if (body.jti !== undefined) {
      const jti = field(body, 'jti', check.text(LIMITS.idChars));
      auth.revokeJti(jti);
      sendJson(res, 201, { revoked: { jti }, disconnected: rt.disconnectRevoked() });
    } else {
      const uid = field(body, 'uid', check.id);
      const now = Date.now();
      auth.revokeUser(uid, now);
      sendJson(res, 201, { revoked: { uid, issuedUpTo: iso(Math.floor(now / 1000) * 1000) }, disconnected: rt.disconnectRevoked(uid) });
    }
  }

  // --- rooms ---

  async function createRoom(req, res) {
    const body = await jsonBody(req);
    const room = store.createRoom({
      title: field(body, 'title', check.text(LIMITS.nameChars)),
      isPrivate: field(body, 'isPrivate', check.bool),
    });
    sendJson(res, 201, undefined, { location: `${PREFIX}/rooms/${room.id}` });
  }

  async function getRoom(req, res, { roomId }) {
    sendJson(res, 200, roomRep(store.room(roomId)));
  }

  async function putRoom(req, res, { roomId }) {
    const body = await jsonBody(req);
    const next = {
      title: field(body, 'title', check.text(LIMITS.nameChars)),
      isPrivate: field(body, 'isPrivate', check.bool),
      status: field(body, 'status', check.oneOf(ROOM_STATUSES)),
    };
    const { room, changes, oldStatus, madePrivate } = store.replaceRoom(roomId, next);
    if (Object.keys(changes).length > 0) {
      rt.roomEmit(room.id, EV.ROOM_UPDATED, { roomId: room.id, changes, room: roomView(room), timestamp: ts() });
    }
    if (changes.status !== undefined) {
      rt.roomEmit(room.id, EV.ROOM_STATUS_CHANGED, { roomId: room.id, oldStatus, newStatus: room.status, timestamp: ts() });
    }
    if (madePrivate) rt.recheckAccess(room.id);
    sendJson(res, 200, roomRep(room));
  }

  async function deleteRoom(req, res, { roomId }) {
    store.deleteRoom(roomId);
    rt.roomDeleted(roomId);
    api.forgetRoom(roomId);
    sendJson(res, 204);
  }

  // --- members ---

  const KINDS = ['player', 'mod'];

  async function addMember(req, res, { roomId }) {
    const body = await jsonBody(req);
    const { room, member } = store.addMember(roomId, field(body, 'uid', check.id), field(body, 'kind', check.oneOf(KINDS)));
    const user = store.user(member.uid);
    rt.roomEmit(room.id, EV.PARTICIPANT_JOINED, { roomId: room.id, participant: participantView(member, user), timestamp: ts() });
    sendJson(res, 201, memberRep(member));
  }

  async function patchMember(req, res, { roomId, uid }) {
    const body = await jsonBody(req);
    const { room, member, changed } = store.setMemberKind(roomId, uid, field(body, 'kind', check.oneOf(KINDS)));
    if (changed) {
      const participant = participantUpdatedView(member, store.user(uid));
      rt.roomEmit(room.id, EV.PARTICIPANT_UPDATED, {
        roomId: room.id,
        participantId: member.id,
        changes: { role: participant.role },
        participant,
        timestamp: ts(),
      });
    }
    sendJson(res, 200, memberRep(member));
  }

  async function removeMember(req, res, { roomId, uid }) {
    const { room, member } = store.removeMember(roomId, uid);
    rt.roomEmit(room.id, EV.PARTICIPANT_LEFT, { roomId: room.id, participantId: member.id, userId: uid, timestamp: ts() });
    if (!bugs.on('removal-keeps')) rt.recheckAccess(room.id);
    sendJson(res, 204);
  }

  // --- rewards, draws, winners ---

  const rewardFields = (body, optional) => ({
    label: field(body, 'label', check.text(LIMITS.nameChars), { optional }),
    stock: field(body, 'stock', check.int(0, 1_000_000), { optional }),
    details: field(body, 'details', check.text(LIMITS.textChars), { optional: true }),
    image: field(body, 'image', check.text(LIMITS.urlChars), { optional: true }),
  });

  async function addReward(req, res, { roomId }) {
    const { room, reward } = store.addReward(roomId, rewardFields(await jsonBody(req), false));
    rt.roomEmit(room.id, EV.PRIZE_CREATED, { roomId: room.id, prize: prizeView(reward), timestamp: ts() });
    sendJson(res, 201, rewardRep(reward));
  }

  function prizeUpdated(room, reward, changes) {
    rt.roomEmit(room.id, EV.PRIZE_UPDATED, { roomId: room.id, prizeId: reward.id, changes, prize: prizeView(reward), timestamp: ts() });
  }

  async function patchReward(req, res, { roomId, rewardId }) {
    const { room, reward, changes } = store.updateReward(roomId, rewardId, rewardFields(await jsonBody(req), true));
    if (Object.keys(changes).length > 0) prizeUpdated(room, reward, changes);
    sendJson(res, 200, rewardRep(reward));
  }

  async function deleteReward(req, res, { roomId, rewardId }) {
    const { room, reward } = store.deleteReward(roomId, rewardId);
    rt.roomEmit(room.id, EV.PRIZE_DELETED, { roomId: room.id, prizeId: reward.id, timestamp: ts() });
    sendJson(res, 204);
  }

  async function prepareDraw(req, res, { roomId }) {
    const body = await jsonBody(req);
    const rewardId = field(body, 'rewardId', check.id);
    const count = field(body, 'count', check.int(1, MAX.drawCount), { optional: true }) ?? 1;
    const { draw, members } = store.prepareDraw(roomId, rewardId, count);
    sendJson(res, 201, {
      drawId: draw.id,
      rewardId,
      picks: members.map((m) => ({ memberId: m.id, uid: m.uid })),
      expiresAt: iso(draw.createdAt + DRAW_TTL_MS),
    });
  }

  async function commitDraw(req, res, { drawId }) {
    const { room, reward, winners } = store.commitDraw(drawId);
    for (const { winner, member, user } of winners) {
      rt.roomEmit(room.id, EV.WINNER_SELECTED, { roomId: room.id, winner: winnerView(winner, member, user, reward), timestamp: ts() });
    }
    if (winners.length > 0) prizeUpdated(room, reward, { quantityRemaining: reward.stock - reward.awarded });
    for (const { winner, user } of winners) {
      rt.notify(
        store.addNotification(user.uid, {
          kind: 'winner_selected',
          title: 'Congratulations!',
          body: `You won ${reward.label}`,
          data: { roomId: room.id, winnerId: winner.id, prizeId: reward.id },
        }),
      );
    }
    sendJson(res, 200, {
      winners: winners.map(({ winner }) => ({ winnerId: winner.id, memberId: winner.memberId, uid: winner.uid, rewardId: reward.id })),
    });
  }

  async function cancelDraw(req, res, { drawId }) {
    store.cancelDraw(drawId);
    sendJson(res, 204);
  }

  async function removeWinner(req, res, { roomId, winnerId }) {
    const { room, winner, reward } = store.removeWinner(roomId, winnerId);
    rt.roomEmit(room.id, EV.WINNER_REMOVED, {
      roomId: room.id,
      winnerId: winner.id,
      participantId: winner.memberId,
      prizeId: winner.rewardId,
      timestamp: ts(),
    });
    if (reward) prizeUpdated(room, reward, { quantityRemaining: reward.stock - reward.awarded });
    sendJson(res, 204);
  }

  // --- quiz ---

  async function addQuestion(req, res, { roomId }) {
    const body = await jsonBody(req);
    const choices = field(body, 'choices', check.texts(LIMITS.options, LIMITS.nameChars));
    if (new Set(choices).size !== choices.length) throw unprocessable('choices', '`choices` must be distinct');
    const { question } = store.addQuestion(roomId, {
      prompt: field(body, 'prompt', check.text(LIMITS.textChars)),
      choices,
      correct: field(body, 'correct', check.int(0, choices.length - 1)),
      seconds: field(body, 'seconds', check.int(1, 3600)),
    });
    sendJson(res, 201, { qid: question.id, roomId });
  }

  async function publishQuestion(req, res, { qid }) {
    const { room, question, total } = store.publishQuestion(qid);
    rt.roomEmit(room.id, EV.QUIZ_QUESTION_PUBLISHED, { ...questionView(question, total), timestamp: ts() });
    sendJson(res, 200, { qid, number: question.number, total, startTime: iso(Math.floor(question.publishedAt / 1000) * 1000) });
  }

  // --- applications ---

  async function createApp(req, res) {
    const body = await jsonBody(req);
    const { app, apiKey } = store.addApp({
      label: field(body, 'label', check.text(LIMITS.nameChars)),
      scopes: field(body, 'scopes', (v, f) => (Array.isArray(v) && v.length === 0 ? v : check.texts(16, 64)(v, f))),
    });
    sendJson(res, 201, { appId: app.id, apiKey });
  }

  async function getApp(req, res, { appId }) {
    const app = store.app(appId);
    sendJson(res, 200, { appId: app.id, label: app.label, scopes: [...app.scopes], createdAt: iso(app.createdAt) });
  }

  async function deleteApp(req, res, { appId }) {
    store.deleteApp(appId);
    api.forgetApp(appId);
    sendJson(res, 204);
  }

  const routes = compileRoutes(
    [
      ['POST', '/users', createUser],
      ['GET', '/users/:uid', getUser],
      ['DELETE', '/users/:uid', deleteUser],
      ['POST', '/users/:uid/notifications', notifyUser],
      ['GET', '/users/:uid/notifications', listNotifications],
      ['POST', '/revocations', revoke],
      ['POST', '/rooms', createRoom],
      ['GET', '/rooms/:roomId', getRoom],
      ['PUT', '/rooms/:roomId', putRoom],
      ['DELETE', '/rooms/:roomId', deleteRoom],
      ['POST', '/rooms/:roomId/members', addMember],
      ['PATCH', '/rooms/:roomId/members/:uid', patchMember],
      ['DELETE', '/rooms/:roomId/members/:uid', removeMember],
      ['POST', '/rooms/:roomId/rewards', addReward],
      ['PATCH', '/rooms/:roomId/rewards/:rewardId', patchReward],
      ['DELETE', '/rooms/:roomId/rewards/:rewardId', deleteReward],
      ['POST', '/rooms/:roomId/draws', prepareDraw],
      ['POST', '/draws/:drawId/commit', commitDraw],
      ['DELETE', '/draws/:drawId', cancelDraw],
      ['DELETE', '/rooms/:roomId/winners/:winnerId', removeWinner],
      ['POST', '/rooms/:roomId/quiz', addQuestion],
      ['POST', '/quiz/:qid/publish', publishQuestion],
      ['POST', '/apps', createApp],
      ['GET', '/apps/:appId', getApp],
      ['DELETE', '/apps/:appId', deleteApp],
    ].map(([m, p, h]) => [m, PREFIX + p, h]),
  );

  return async (req, res) => {
    const path = requestPath(req);
    if (!authorized(req))
      throw new HttpError(401, 'unauthorized', 'send Authorization: Token <admin key>', {}, { 'www-authenticate': 'Token' });
    const found = findRoute(routes, req.method, path);
    if (!found) throw new HttpError(404, 'not_found', `no ${req.method} ${path} here`);
    try {
      await found.handler(req, res, found.params);
    } catch (err) {
      if (err instanceof StoreError) throw new HttpError(STORE_STATUS[err.kind], err.kind === 'full' ? 'capacity' : err.kind, err.message);
      throw err;
    }
  };
}
