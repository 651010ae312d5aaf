/**
 * In-memory state: users, rooms with their members, rewards, winners and
 * quiz questions, pending draws, notifications and applications.
 *
 * Memory, not a database, by choice: this server exists to be a conformance
 * target that a test starts, fills over the admin API and throws away; a
 * restart starting empty is what such a run wants. Every collection has a
 * ceiling (`MAX`), so even a careless admin client cannot grow it without
 * bound; clients over Socket.IO can only add quiz answers (one per user and
 * question) and read notifications.
 *
 * The store changes records and says what changed; it never talks to
 * sockets. The admin API turns its answers into broadcasts.
 *
 * @module store
 */

import { randomInt, randomUUID, randomBytes, createHash, timingSafeEqual } from 'node:crypto';

export const MAX = Object.freeze({
  users: 100_000,
  rooms: 10_000,
  membersPerRoom: 100_000,
  rewardsPerRoom: 1_000,
  questionsPerRoom: 1_000,
  notificationsPerUser: 1_000,
  apps: 1_000,
  pendingDraws: 1_000,
  drawCount: 1_000,
});

/** A draw not committed within this time is dropped. */
export const DRAW_TTL_MS = 5 * 60_000;

/** Why a store operation refused; the admin API maps `kind` to a status. */
export class StoreError extends Error {
  /** @param {'not_found'|'conflict'|'full'|'invalid'} kind */
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

const notFound = (what, id) => new StoreError('not_found', `${what} \`${id}\` does not exist`);

/** `map.get(id)`, or a not_found StoreError naming `what`. */
function found(map, what, id) {
  const v = map.get(id);
  if (!v) throw notFound(what, id);
  return v;
}

function newId(prefix) {
  return `${prefix}-${randomUUID()}`;
}

const keyDigest = (key) => createHash('sha256').update(key).digest();

function slug(label) {
  const s = label
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 24);
  return s || 'app';
}

export class Store {
  constructor() {
    /** uid -> {uid, name, avatar, createdAt} */
    this.users = new Map();
    /** id -> room (see createRoom) */
    this.rooms = new Map();
    /** question id -> question; questions also hang off their room */
    this.questions = new Map();
    /** draw id -> {id, roomId, rewardId, memberIds, createdAt} */
    this.draws = new Map();
    /** uid -> Map(notification id -> notification), oldest first */
    this.notifications = new Map();
    /** notification id -> notification, for mark_read */
    this.notificationsById = new Map();
    /** app id -> {id, label, scopes: Set, keyDigest, createdAt} */
    this.apps = new Map();
  }

  // --- users ---

  addUser({ uid, name, avatar }, now = Date.now()) {
    if (this.users.size >= MAX.users) throw new StoreError('full', `at most ${MAX.users} users`);
    const id = uid ?? newId('u');
    if (this.users.has(id)) throw new StoreError('conflict', `user \`${id}\` exists`);
    const user = { uid: id, name, avatar: avatar ?? null, createdAt: now };
    this.users.set(id, user);
    return user;
  }

  user(uid) {
    return found(this.users, 'user', uid);
  }

  /** Deletes a user, their memberships and notifications; their winners stay (history). */
  deleteUser(uid) {
    const user = this.user(uid);
    const left = [];
    for (const room of this.rooms.values()) {
      const member = room.members.get(uid);
      if (member) {
        room.members.delete(uid);
        left.push({ room, member });
      }
    }
    this.users.delete(uid);
    for (const nid of this.notifications.get(uid)?.keys() ?? []) this.notificationsById.delete(nid);
    this.notifications.delete(uid);
    return { user, left };
  }

  // --- rooms ---

  createRoom({ title, isPrivate }, now = Date.now()) {
    if (this.rooms.size >= MAX.rooms) throw new StoreError('full', `at most ${MAX.rooms} rooms`);
    const room = {
      id: newId('r'),
      title,
      isPrivate,
      status: 'draft',
      createdAt: now,
      /** uid -> {id, uid, kind, joinedAt} */
      members: new Map(),
      /** id -> reward */
      rewards: new Map(),
      /** id -> {id, roomId, rewardId, memberId, uid, createdAt} */
      winners: new Map(),
      /** question ids in creation order */
      questionIds: [],
      published: 0,
    };
    this.rooms.set(room.id, room);
    return room;
  }

  room(id) {
    return found(this.rooms, 'room', id);
  }

  /**
   * Replaces the room's writable fields. `changes` uses the protocol's
   * names (`name`, `status`); `isPrivate` is not a protocol field and is
   * reported apart.
   */
  replaceRoom(id, { title, isPrivate, status }) {
    const room = this.room(id);
    const changes = {};
    if (room.title !== title) changes.name = title;
    if (room.status !== status) changes.status = status;
    const oldStatus = room.status;
    const madePrivate = isPrivate && !room.isPrivate;
    Object.assign(room, { title, isPrivate, status });
    return { room, changes, oldStatus, madePrivate };
  }

  deleteRoom(id) {
    const room = this.room(id);
    this.rooms.delete(id);
    for (const qid of room.questionIds) this.questions.delete(qid);
    for (const [did, d] of this.draws) if (d.roomId === id) this.draws.delete(did);
    return room;
  }

  // --- members ---

  addMember(roomId, uid, kind, now = Date.now()) {
    const room = this.room(roomId);
    this.user(uid);
    if (room.members.has(uid)) throw new StoreError('conflict', `\`${uid}\` is already a member`);
    if (room.members.size >= MAX.membersPerRoom) throw new StoreError('full', `at most ${MAX.membersPerRoom} members`);
    const member = { id: newId('m'), uid, kind, joinedAt: now };
    room.members.set(uid, member);
    return { room, member };
  }

  member(room, uid) {
    return found(room.members, 'member', uid);
  }

  setMemberKind(roomId, uid, kind) {
    const room = this.room(roomId);
    const member = this.member(room, uid);
    const changed = member.kind !== kind;
    member.kind = kind;
    return { room, member, changed };
  }

  removeMember(roomId, uid) {
    const room = this.room(roomId);
    const member = this.member(room, uid);
    room.members.delete(uid);
    return { room, member };
  }

  // --- rewards ---

  addReward(roomId, { label, details, image, stock }, now = Date.now()) {
    const room = this.room(roomId);
    if (room.rewards.size >= MAX.rewardsPerRoom) throw new StoreError('full', `at most ${MAX.rewardsPerRoom} rewards`);
    const reward = {
      id: newId('rw'),
      roomId,
      label,
      details: details ?? null,
      image: image ?? null,
      stock,
      awarded: 0,
      createdAt: now,
    };
    room.rewards.set(reward.id, reward);
    return { room, reward };
  }

  reward(room, rewardId) {
    return found(room.rewards, 'reward', rewardId);
  }

  /** Applies the fields present in `patch`; `changes` uses the protocol's names. */
  updateReward(roomId, rewardId, patch) {
    const room = this.room(roomId);
    const reward = this.reward(room, rewardId);
    if (patch.stock !== undefined && patch.stock < reward.awarded + this.reserved(reward)) {
      throw new StoreError('conflict', `stock cannot go below the ${reward.awarded} awarded and reserved units`);
    }
    const changes = {};
    const set = (field, wire, value) => {
      if (value !== undefined && reward[field] !== value) {
        reward[field] = value;
        changes[wire] = value;
      }
    };
    set('label', 'name', patch.label);
    set('details', 'description', patch.details);
    set('image', 'imageUrl', patch.image);
    const oldRemaining = reward.stock - reward.awarded;
    set('stock', 'quantity', patch.stock);
    if (reward.stock - reward.awarded !== oldRemaining) changes.quantityRemaining = reward.stock - reward.awarded;
    return { room, reward, changes };
  }

  deleteReward(roomId, rewardId) {
    const room = this.room(roomId);
    const reward = this.reward(room, rewardId);
    if (reward.awarded > 0) throw new StoreError('conflict', 'the reward has winners; remove them first');
    room.rewards.delete(rewardId);
    for (const [did, d] of this.draws) if (d.rewardId === rewardId) this.draws.delete(did);
    return { room, reward };
  }

  // --- draws (two steps) and winners ---

  /** Units of `reward` held by draws that are not committed yet. */
  reserved(reward) {
    let n = 0;
    for (const d of this.draws.values()) if (d.rewardId === reward.id) n += d.memberIds.length;
    return n;
  }

  pruneDraws(now) {
    for (const [id, d] of this.draws) if (now - d.createdAt > DRAW_TTL_MS) this.draws.delete(id);
  }

  /**
   * Step one: picks `count` winners uniformly at random (CSPRNG) among the
   * room's players who have not won this reward and are not picked by
   * another pending draw of it, and reserves the units.
   */
  prepareDraw(roomId, rewardId, count, now = Date.now()) {
    this.pruneDraws(now);
    const room = this.room(roomId);
    const reward = this.reward(room, rewardId);
    if (this.draws.size >= MAX.pendingDraws) throw new StoreError('full', `at most ${MAX.pendingDraws} pending draws`);
    const left = reward.stock - reward.awarded - this.reserved(reward);
    if (count > left) throw new StoreError('conflict', `only ${left} unit(s) left to draw`);
    const taken = new Set();
    for (const w of room.winners.values()) if (w.rewardId === rewardId) taken.add(w.memberId);
    for (const d of this.draws.values()) if (d.rewardId === rewardId) d.memberIds.forEach((m) => taken.add(m));
    const pool = [...room.members.values()].filter((m) => m.kind === 'player' && !taken.has(m.id));
    if (count > pool.length) throw new StoreError('conflict', `only ${pool.length} eligible player(s)`);
    for (let i = 0; i < count; i++) {
      const j = i + randomInt(pool.length - i);
      [pool[i], pool[j]] = [pool[j], pool[i]];
    }
    const draw = { id: newId('d'), roomId, rewardId, memberIds: pool.slice(0, count).map((m) => m.id), createdAt: now };
    this.draws.set(draw.id, draw);
    return { draw, members: pool.slice(0, count) };
  }

  /**
   * Step two: the picks that are still members become winners; picks who
   * left in between give their unit back. The draw is gone afterwards.
   */
  commitDraw(drawId, now = Date.now()) {
    this.pruneDraws(now);
    const draw = found(this.draws, 'draw', drawId);
    this.draws.delete(drawId);
    const room = this.room(draw.roomId);
    const reward = this.reward(room, draw.rewardId);
    const byId = new Map([...room.members.values()].map((m) => [m.id, m]));
    const winners = [];
    for (const memberId of draw.memberIds) {
      const member = byId.get(memberId);
      if (!member) continue;
      const winner = { id: newId('w'), roomId: room.id, rewardId: reward.id, memberId, uid: member.uid, createdAt: now };
      room.winners.set(winner.id, winner);
      reward.awarded += 1;
      winners.push({ winner, member, user: this.user(member.uid) });
    }
    return { room, reward, winners };
  }

  cancelDraw(drawId) {
    if (!this.draws.delete(drawId)) throw notFound('draw', drawId);
  }

  removeWinner(roomId, winnerId) {
    const room = this.room(roomId);
    const winner = found(room.winners, 'winner', winnerId);
    room.winners.delete(winnerId);
    const reward = room.rewards.get(winner.rewardId);
    if (reward) reward.awarded -= 1;
    return { room, winner, reward };
  }

  // --- quiz ---

  addQuestion(roomId, { prompt, choices, correct, seconds }) {
    const room = this.room(roomId);
    if (room.questionIds.length >= MAX.questionsPerRoom) throw new StoreError('full', `at most ${MAX.questionsPerRoom} questions`);
    const q = {
      id: newId('q'),
      roomId,
      prompt,
      choices,
      correct,
      seconds,
      number: null,
      publishedAt: null,
      /** uid -> the first answer's result */
      answers: new Map(),
      answered: 0,
    };
    room.questionIds.push(q.id);
    this.questions.set(q.id, q);
    return { room, question: q };
  }

  question(qid) {
    return found(this.questions, 'question', qid);
  }

  /** `startTime` is the publish instant cut to whole seconds (the timestamps' form). */
  publishQuestion(qid, now = Date.now()) {
    const q = this.question(qid);
    if (q.publishedAt !== null) throw new StoreError('conflict', 'the question is already published');
    const room = this.room(q.roomId);
    room.published += 1;
    q.number = room.published;
    // The instant itself: startTime is shown at whole seconds (C7), but
    // responseTime and the time limit count from when it really started.
    q.publishedAt = now;
    return { room, question: q, total: room.questionIds.length };
  }

  /**
   * Records an answer. A user's second answer gets the first one's result
   * again (`repeated`), whatever it says: answers are idempotent. `rank`
   * counts every answer, right or wrong, in arrival order.
   */
  answer(q, member, text, now, graceMs, { unchecked = false } = {}) {
    const prior = q.answers.get(member.uid);
    if (prior) return { ...prior, repeated: true };
    if (!unchecked) {
      if (q.publishedAt === null) throw new StoreError('invalid', 'the question is not published');
      if (now > q.publishedAt + q.seconds * 1000 + graceMs) throw new StoreError('invalid', 'the time for this question is over');
      if (!q.choices.includes(text)) throw new StoreError('invalid', 'the answer is not one of the options');
    }
    q.answered += 1;
    const result = {
      memberId: member.id,
      correct: text === q.choices[q.correct],
      responseTime: Math.round(now - (q.publishedAt ?? now)) / 1000,
      rank: q.answered,
    };
    q.answers.set(member.uid, result);
    return { ...result, repeated: false };
  }

  // --- notifications ---

  addNotification(uid, { kind, title, body, data }, now = Date.now()) {
    this.user(uid);
    let box = this.notifications.get(uid);
    if (!box) this.notifications.set(uid, (box = new Map()));
    // A full box drops its oldest entry: notifications are messages, not records.
    if (box.size >= MAX.notificationsPerUser) {
      const oldest = box.keys().next().value;
      box.delete(oldest);
      this.notificationsById.delete(oldest);
    }
    const n = { id: newId('n'), uid, kind, title, body, data, read: false, createdAt: now };
    box.set(n.id, n);
    this.notificationsById.set(n.id, n);
    return n;
  }

  /** The notification `nid`, or null. */
  findNotification(nid) {
    return this.notificationsById.get(nid) ?? null;
  }

  // --- applications ---

  /** The server picks the id (`<label slug>-<6 hex>`) and the key; only the key's digest is kept. */
  addApp({ label, scopes }, now = Date.now()) {
    if (this.apps.size >= MAX.apps) throw new StoreError('full', `at most ${MAX.apps} apps`);
    let id;
    do id = `${slug(label)}-${randomBytes(3).toString('hex')}`;
    while (this.apps.has(id));
    const apiKey = `ak_${randomBytes(24).toString('base64url')}`;
    const app = { id, label, scopes: new Set(scopes), keyDigest: keyDigest(apiKey), createdAt: now };
    this.apps.set(id, app);
    return { app, apiKey };
  }

  app(id) {
    return found(this.apps, 'app', id);
  }

  deleteApp(id) {
    this.app(id);
    this.apps.delete(id);
  }

  /** The app whose id and key these are, or null. */
  appByKey(id, key) {
    const app = this.apps.get(id);
    if (!app) return null;
    return timingSafeEqual(app.keyDigest, keyDigest(key)) ? app : null;
  }
}
