/**
 * The Socket.IO side: authentication of both namespaces, the client events
 * with their acks and errors, who listens to which room, presence, the
 * per-connection rate limit and token expiry while connected.
 *
 * Who hears a room: sockets on `/` that sent `room:subscribe`, and sockets
 * connected to `/rooms/:roomId` (the connection needs the same access as a
 * subscription and listens to that room only; it is not a `/` subscription
 * and gets no `room:subscribed`). Both kinds are "listeners"; presence
 * counts a user online in a room while any socket of theirs listens.
 *
 * Every client event goes through one dispatcher (`#dispatch`): rate limit,
 * token expiry, known name, payload validation, then the handler. A failure
 * answers the ack (if the client asked for one) *and* emits `error`, both
 * from one place.
 *
 * @module realtime
 */

import { Server } from 'socket.io';
import { TokenError } from './auth.js';
import { AUTH_FAILED_MESSAGE, CODE, EV, ID_PATTERN, ID_RE, LIMITS, isoSeconds, notificationView, roomView, userView } from './protocol.js';
import { FixedWindows } from './ratelimit.js';
import { StoreError } from './store.js';

/** Room namespaces; an id that does not fit never creates a namespace. */
const ROOM_NS_RE = new RegExp(`^/rooms/(${ID_PATTERN})$`);
const roomNsName = (roomId) => `/rooms/${roomId}`;

/** setTimeout's longest delay; longer token lifetimes re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A refused client event. */
export class ClientError extends Error {
  constructor(code, message, roomId) {
    super(message);
    Object.assign(this, { code, roomId });
  }
}

/** The wire form of `connect_error`: the message, and `data` with the code. */
function connectError(message, data) {
  return Object.assign(new Error(message), { data });
}

/** Payload fields by kind; a payload is one plain object, other fields are ignored. */
const FIELD = {
  id: (v) => typeof v === 'string' && ID_RE.test(v),
  text: (v) => typeof v === 'string' && v.length > 0 && v.length <= LIMITS.textChars,
  number: (v) => typeof v === 'number' && Number.isFinite(v),
};

const isPlainObject = (v) => v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype;

export class Realtime {
  /**
   * @param {object} o
   * @param {import('node:http').Server} o.httpServer
   * @param {import('./store.js').Store} o.store
   * @param {import('./auth.js').Auth} o.auth
   * @param {import('./bugs.js').Bugs} o.bugs
   * @param {string[]} o.transports
   * @param {number} o.tokenGraceMs
   * @param {number} o.clientLimit
   * @param {number} o.clientWindowMs
   */
  constructor({ httpServer, store, auth, bugs, transports, tokenGraceMs, clientLimit, clientWindowMs }) {
    Object.assign(this, { store, auth, bugs, tokenGraceMs });
    this.io = new Server(httpServer, {
      transports,
      allowUpgrades: !bugs.on('no-upgrade'),
      serveClient: false,
      maxHttpBufferSize: LIMITS.engineMessageBytes,
      // An Engine.IO session that never joins a namespace is closed this soon.
      connectTimeout: 10_000,
      // A refused connection to /rooms/<id> must not leave its namespace behind.
      cleanupEmptyChildNamespaces: true,
    });
    this.clientRate = new FixedWindows(clientLimit, clientWindowMs, { neverResets: bugs.on('rate-window-never-resets') });
    /** roomId -> Map(uid -> {user, since, sockets: Set}) : every listener, by room and user */
    this.presence = new Map();
    /** uid -> Set of sockets (all namespaces) */
    this.byUser = new Map();

    this.handlers = {
      [EV.ROOM_SUBSCRIBE]: { fields: { roomId: 'id' }, run: (s, p) => this.#subscribe(s, p) },
      [EV.ROOM_UNSUBSCRIBE]: { fields: { roomId: 'id' }, run: (s, p) => this.#unsubscribe(s, p) },
      [EV.PRESENCE_GET_ONLINE]: { fields: { roomId: 'id' }, run: (s, p) => this.#getOnline(s, p) },
      [EV.NOTIFICATION_MARK_READ]: { fields: { notificationId: 'id' }, run: (s, p) => this.#markRead(s, p) },
      [EV.QUIZ_ANSWER_SUBMIT]: {
        fields: { questionId: 'id', answer: 'text', timestamp: 'number' },
        run: (s, p) => this.#answer(s, p),
      },
    };

    this.io.use((socket, next) => this.#authenticate(socket, null, next));
    this.io.on('connection', (socket) => this.#onConnect(socket));
    const rooms = this.io.of(ROOM_NS_RE);
    rooms.use((socket, next) => this.#authenticate(socket, ROOM_NS_RE.exec(socket.nsp.name)[1], next));
    rooms.on('connection', (socket) => this.#onConnect(socket));
  }

  /** `timestamp` of every server event. */
  stamp() {
    return isoSeconds(Date.now() - (this.bugs.on('stale-timestamps') ? 10 * 60_000 : 0));
  }

  canAccess(user, room) {
    return !room.isPrivate || room.members.has(user.uid) || this.bugs.on('private-open');
  }

  // --- connecting ---

  #authenticate(socket, nsRoomId, next) {
    // Socket.IO closes a connection that sends CONNECT for a namespace it is
    // in, but not while the first CONNECT is still pending: a burst in one
    // message would make one socket each.
    for (const other of socket.nsp._preConnectSockets.values()) {
      if (other !== socket && other.client === socket.client)
        return next(connectError('Already connecting', { code: CODE.INVALID_PAYLOAD }));
    }
    const token = socket.handshake.auth?.token;
    let claims = null;
    let user;
    try {
      const expiryIgnored = nsRoomId === null && this.bugs.on('root-no-auth-check-expiry');
      claims = this.auth.verify(token, 'access', { expiryIgnored });
      user = this.store.users.get(claims.sub);
      if (!user) throw new TokenError('unknown_user');
    } catch (err) {
      if (!(err instanceof TokenError)) return next(err);
      if (!this.bugs.on(nsRoomId === null ? 'root-no-auth' : 'ns-no-auth')) {
        return next(connectError(AUTH_FAILED_MESSAGE, { code: CODE.AUTHENTICATION_FAILED }));
      }
      claims = null;
      user = { uid: `guest-${socket.id}`, name: 'guest', avatar: null };
    }
    if (nsRoomId !== null) {
      const room = this.store.rooms.get(nsRoomId);
      if (!room && this.bugs.on('room-ns-unknown-open')) {
        socket.data = { user, claims, roomId: null, rooms: new Set(), expired: false, timers: [] };
        return next();
      }
      if (!room) {
        const code = this.#notFoundCode();
        return next(connectError(code === CODE.ROOM_NOT_FOUND ? 'Room not found' : 'Permission denied', { code, roomId: nsRoomId }));
      }
      if (!this.canAccess(user, room) || this.bugs.on('room-ns-closed')) {
        return next(connectError('Permission denied', { code: CODE.PERMISSION_DENIED, roomId: nsRoomId }));
      }
    }
    socket.data = { user, claims, roomId: nsRoomId, rooms: new Set(), expired: false, timers: [] };
    next();
  }

  #onConnect(socket) {
    const { user, roomId } = socket.data;
    let mine = this.byUser.get(user.uid);
    if (!mine) this.byUser.set(user.uid, (mine = new Set()));
    mine.add(socket);
    // Handlers first: socket.io runs 'connection' before it reads the next packet.
    socket.onAny((event, ...args) => this.#dispatch(socket, event, args));
    // A client may emit an event named `error`; without a listener Node would throw.
    socket.on('error', () => {});
    socket.on('disconnect', () => this.#onDisconnect(socket));
    if (socket.data.claims && !this.bugs.on('no-token-expired')) this.#armExpiry(socket, socket.data.claims.exp * 1000);
    if (roomId !== null) {
      // The room may have gone between the middleware and now.
      const room = this.store.rooms.get(roomId);
      if (room) this.#listen(socket, room);
      else socket.disconnect();
    }
  }

  #onDisconnect(socket) {
    for (const t of socket.data.timers) clearTimeout(t);
    for (const roomId of [...socket.data.rooms]) this.#unlisten(socket, roomId);
    const mine = this.byUser.get(socket.data.user.uid);
    mine?.delete(socket);
    if (mine?.size === 0) this.byUser.delete(socket.data.user.uid);
    this.clientRate.forget(socket);
  }

  /** At `exp`: `token:expired`, client events refused from then on, and the socket closed after the grace. */
  #armExpiry(socket, expMs) {
    const left = expMs - Date.now();
    if (left > MAX_TIMER_MS) {
      socket.data.timers.push(setTimeout(() => this.#armExpiry(socket, expMs), MAX_TIMER_MS));
      return;
    }
    const expire = () => {
      if (!socket.connected) return;
      socket.data.expired = true;
      socket.emit(EV.TOKEN_EXPIRED, { timestamp: this.stamp() });
      socket.data.timers.push(setTimeout(() => socket.disconnect(), this.tokenGraceMs));
    };
    socket.data.timers.push(setTimeout(expire, Math.max(0, left)));
  }

  // --- client events ---

  #dispatch(socket, event, args) {
    let ack = typeof args.at(-1) === 'function' ? args.pop() : null;
    if (this.bugs.on('no-ack')) ack = null;
    const payload = args[0];
    const roomId = isPlainObject(payload) && FIELD.id(payload.roomId) ? payload.roomId : socket.data.roomId;
    if (!this.bugs.on('no-rate-limit') && !this.clientRate.take(socket)) {
      this.#fail(
        socket,
        ack,
        event,
        roomId,
        new ClientError(CODE.RATE_LIMIT_EXCEEDED, `more than ${this.clientRate.limit} events in ${this.clientRate.windowMs / 1000} s`),
      );
      if (!this.bugs.on('over-limit-processed')) return;
      ack = null;
    }
    try {
      if (socket.data.expired) throw new ClientError(CODE.AUTHENTICATION_FAILED, 'the token has expired: refresh it and reconnect');
      const handler = Object.hasOwn(this.handlers, event) ? this.handlers[event] : null;
      if (!handler) throw new ClientError(CODE.INVALID_PAYLOAD, `unknown event \`${String(event).slice(0, 64)}\``);
      if (!this.bugs.on('no-validation')) this.#validate(handler.fields, args);
      // Effects first, the ack last: when the ack arrives, everything the
      // event caused (room:subscribed, presence, a quiz result) is already on the wire.
      const reply = handler.run(socket, payload ?? {});
      if (this.bugs.on('ack-no-success')) delete reply.success;
      ack?.(reply);
    } catch (err) {
      if (err instanceof ClientError) return this.#fail(socket, ack, event, err.roomId ?? roomId, err);
      if (err instanceof StoreError) return this.#fail(socket, ack, event, roomId, new ClientError(CODE.INVALID_PAYLOAD, err.message));
      // Only reachable with `no-validation` (handlers trust validated input).
      this.#fail(socket, ack, event, roomId, new ClientError(CODE.INVALID_PAYLOAD, 'the payload could not be processed'));
    }
  }

  #validate(fields, args) {
    const payload = args[0];
    if (args.length !== 1 || !isPlainObject(payload)) throw new ClientError(CODE.INVALID_PAYLOAD, 'the payload must be one JSON object');
    if (JSON.stringify(payload).length > LIMITS.clientPayloadBytes) {
      throw new ClientError(CODE.INVALID_PAYLOAD, `the payload is over ${LIMITS.clientPayloadBytes} bytes`);
    }
    for (const [name, kind] of Object.entries(fields)) {
      if (!FIELD[kind](payload[name]))
        throw new ClientError(CODE.INVALID_PAYLOAD, `\`${name}\` must be ${kind === 'id' ? 'an id' : `a ${kind}`}`);
    }
  }

  /** A failure: the ack (when asked for) and the `error` event, both. */
  #fail(socket, ack, event, roomId, err) {
    const code = err.code === CODE.ROOM_NOT_FOUND ? this.#notFoundCode() : err.code;
    ack?.({ success: false, error: { code, message: err.message } });
    const details = { action: String(event).slice(0, 64) };
    if (roomId) details.roomId = roomId;
    socket.emit(EV.ERROR, { code, message: err.message, details, timestamp: this.stamp() });
  }

  #notFoundCode() {
    return this.bugs.on('wrong-error-code') ? CODE.PERMISSION_DENIED : CODE.ROOM_NOT_FOUND;
  }

  /**
   * The room a room-bound event names. On a room namespace only that room
   * may be named.
   */
  #room(socket, roomId) {
    if (socket.data.roomId !== null && roomId !== socket.data.roomId) {
      throw new ClientError(CODE.PERMISSION_DENIED, `this connection belongs to room ${socket.data.roomId}`, roomId);
    }
    const room = this.store.rooms.get(roomId);
    if (!room) throw new ClientError(CODE.ROOM_NOT_FOUND, `room ${roomId} does not exist`, roomId);
    return room;
  }

  #accessibleRoom(socket, roomId) {
    const room = this.#room(socket, roomId);
    if (!this.canAccess(socket.data.user, room)) {
      throw new ClientError(CODE.PERMISSION_DENIED, 'the room is private and you are not a member', roomId);
    }
    return room;
  }

  #subscribe(socket, { roomId }) {
    const room = this.#accessibleRoom(socket, roomId);
    socket.emit(EV.ROOM_SUBSCRIBED, { roomId: room.id, timestamp: this.stamp() });
    this.#listen(socket, room);
    return { success: true, room: roomView(room) };
  }

  #unsubscribe(socket, { roomId }) {
    const room = this.#room(socket, roomId);
    if (!this.bugs.on('unsubscribe-keeps')) this.#unlisten(socket, room.id);
    socket.emit(EV.ROOM_UNSUBSCRIBED, { roomId: room.id, timestamp: this.stamp() });
    return { success: true, data: { roomId: room.id } };
  }

  /** The text's shape exactly: `{roomId, users, count}`, no `success`. */
  #getOnline(socket, { roomId }) {
    const room = this.#accessibleRoom(socket, roomId);
    const users = [...(this.presence.get(room.id)?.values() ?? [])].map((e) => ({
      ...userView(e.user),
      connectedAt: isoSeconds(e.since),
    }));
    return { roomId: room.id, users, count: users.length };
  }

  #markRead(socket, { notificationId }) {
    const n = this.store.findNotification(notificationId);
    if (!n) throw new ClientError(CODE.INVALID_PAYLOAD, `notification ${notificationId} does not exist`);
    if (n.uid !== socket.data.user.uid && !this.bugs.on('mark-read-anyone')) throw new ClientError(CODE.PERMISSION_DENIED, 'the notification is not yours');
    n.read = true;
    return { success: true, data: { notificationId: n.id, read: true } };
  }

  #answer(socket, payload) {
    if (!this.bugs.on('quiz-codes-swapped')) return this.#answerChecked(socket, payload);
    try {
      return this.#answerChecked(socket, payload);
    } catch (err) {
      const denied = err instanceof ClientError && err.code === CODE.PERMISSION_DENIED;
      throw new ClientError(denied ? CODE.INVALID_PAYLOAD : CODE.PERMISSION_DENIED, err.message, err.roomId);
    }
  }

  #answerChecked(socket, { questionId, answer }) {
    const q = this.store.questions.get(questionId);
    if (!q) throw new ClientError(CODE.INVALID_PAYLOAD, `question ${questionId} does not exist`);
    const room = this.#room(socket, q.roomId);
    const member = room.members.get(socket.data.user.uid);
    if (!member) throw new ClientError(CODE.PERMISSION_DENIED, 'only members of the room may answer', room.id);
    const r = this.store.answer(q, member, answer, Date.now(), LIMITS.quizGraceMs, { unchecked: this.bugs.on('quiz-unchecked') });
    const rank = this.bugs.on('quiz-rank-wrong') ? 1 : r.rank;
    if (!r.repeated) {
      const { user } = socket.data;
      this.roomEmit(room.id, EV.QUIZ_ANSWER_RESULT, {
        questionId: q.id,
        participantId: member.id,
        user: { id: user.uid, name: user.name },
        correct: r.correct,
        responseTime: r.responseTime,
        rank,
        timestamp: this.stamp(),
      });
    }
    return { success: true, correct: r.correct, responseTime: r.responseTime, rank };
  }

  // --- listeners and presence ---

  #listen(socket, room) {
    if (socket.data.rooms.has(room.id)) return;
    socket.join(room.id);
    socket.data.rooms.add(room.id);
    const { user } = socket.data;
    let users = this.presence.get(room.id);
    if (!users) this.presence.set(room.id, (users = new Map()));
    let entry = users.get(user.uid);
    const first = !entry;
    if (first) users.set(user.uid, (entry = { user, since: Date.now(), sockets: new Set() }));
    entry.sockets.add(socket);
    if (first) {
      this.roomEmit(room.id, EV.PRESENCE_USER_ONLINE, { roomId: room.id, userId: user.uid, user: userView(user), timestamp: this.stamp() });
    }
  }

  /** Stops `socket` listening to `roomId`; the user's last socket there takes them offline. */
  #unlisten(socket, roomId, { announce = true } = {}) {
    if (!socket.data.rooms.delete(roomId)) return;
    socket.leave(roomId);
    const { uid } = socket.data.user;
    const users = this.presence.get(roomId);
    const entry = users?.get(uid);
    if (!entry) return;
    entry.sockets.delete(socket);
    if (entry.sockets.size > 0) return;
    users.delete(uid);
    if (users.size === 0) this.presence.delete(roomId);
    if (announce && !this.bugs.on('no-presence-offline')) {
      this.roomEmit(roomId, EV.PRESENCE_USER_OFFLINE, { roomId, userId: uid, timestamp: this.stamp() });
    }
  }

  /** Every socket listening to `roomId`. */
  listeners(roomId) {
    const out = [];
    for (const e of this.presence.get(roomId)?.values() ?? []) out.push(...e.sockets);
    return out;
  }

  // --- sending ---

  /** Sends to every listener of the room: `/` subscribers and the room's namespace. */
  roomEmit(roomId, event, ...args) {
    if (this.bugs.on('room-id-renamed') && isPlainObject(args[0]) && Object.hasOwn(args[0], 'roomId')) {
      const { roomId: id, ...rest } = args[0];
      args[0] = { room_id: id, ...rest };
    }
    const targets = [this.bugs.on('leak-rooms') ? this.io.of('/') : this.io.of('/').to(roomId)];
    // Looked up, not io.of(): a broadcast must not create the namespace.
    const own = this.io._nsps.get(roomNsName(roomId));
    if (own) targets.push(own.to(roomId));
    if (this.bugs.on('leak-namespaces')) {
      for (const [name, nsp] of this.io._nsps) if (nsp !== own && ROOM_NS_RE.test(name)) targets.push(nsp);
    }
    const times = this.bugs.on('duplicate-events') ? 2 : 1;
    for (const t of targets) for (let i = 0; i < times; i++) t.emit(event, ...args);
  }

  /** `notification:received` to the user's sockets on `/` (user events belong to `/`). */
  notify(notification) {
    const times = this.bugs.on('duplicate-events') ? 2 : 1;
    const payload = { ...notificationView(notification), timestamp: this.stamp() };
    const sockets = this.bugs.on('notifications-to-all') ? [...this.byUser.values()].flatMap((set) => [...set]) : (this.byUser.get(notification.uid) ?? []);
    for (const s of sockets) {
      const here = s.nsp.name === '/' || this.bugs.on('notifications-on-namespaces');
      if (here) for (let i = 0; i < times; i++) s.emit(EV.NOTIFICATION_RECEIVED, payload);
    }
  }

  // --- consequences of admin changes ---

  /**
   * After a change of membership or privacy: listeners who may no longer
   * see the room get `room:unsubscribed`; on `/` they stop listening, on
   * the room's namespace they are disconnected.
   */
  recheckAccess(roomId) {
    const room = this.store.rooms.get(roomId);
    if (!room) return;
    for (const s of this.listeners(roomId)) {
      if (this.canAccess(s.data.user, room)) continue;
      s.emit(EV.ROOM_UNSUBSCRIBED, { roomId, timestamp: this.stamp() });
      if (s.data.roomId === null) this.#unlisten(s, roomId);
      else s.disconnect();
    }
  }

  /** After `room:deleted`: `/` subscribers stop listening (no presence events for a room that is gone), the namespace closes. */
  roomDeleted(roomId) {
    this.roomEmit(roomId, EV.ROOM_DELETED, { roomId, timestamp: this.stamp() });
    for (const s of this.listeners(roomId)) {
      if (s.data.roomId === null) this.#unlisten(s, roomId, { announce: false });
      else s.disconnect();
    }
    this.presence.delete(roomId);
  }

  /** Disconnects every socket whose token is now revoked; returns how many. */
  disconnectRevoked(uid) {
    if (this.bugs.on('revocation-ignores-live')) return 0;
    const sets = uid === undefined ? [...this.byUser.values()] : [this.byUser.get(uid) ?? []];
    let n = 0;
    for (const set of sets) {
      for (const s of [...set]) {
        if (s.data.claims && this.auth.isRevoked(s.data.claims)) {
          s.disconnect();
          n += 1;
        }
      }
    }
    return n;
  }

  /** Disconnects every socket of a deleted user; returns how many. */
  disconnectUser(uid) {
    const set = [...(this.byUser.get(uid) ?? [])];
    for (const s of set) s.disconnect();
    return set.length;
  }

  close() {
    return new Promise((resolve) => this.io.close(() => resolve()));
  }
}
