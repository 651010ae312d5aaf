/**
 * The protocol as this server speaks it: event names, error codes, limits
 * and the payload shapes of the protocol text, built from the store's own
 * records. Every other module takes names and shapes from here, so the wire
 * form is written down once.
 *
 * The shapes are the text's examples, field for field; where the text shows
 * a field this server has no value for (a prize without an image) the field
 * is `null`, never missing.
 *
 * @module protocol
 */

/** Event names (the text's `entity:action`). */
export const EV = Object.freeze({
  ROOM_SUBSCRIBE: 'room:subscribe',
  ROOM_UNSUBSCRIBE: 'room:unsubscribe',
  ROOM_SUBSCRIBED: 'room:subscribed',
  ROOM_UNSUBSCRIBED: 'room:unsubscribed',
  ROOM_UPDATED: 'room:updated',
  ROOM_STATUS_CHANGED: 'room:status_changed',
  ROOM_DELETED: 'room:deleted',
  PARTICIPANT_JOINED: 'participant:joined',
  PARTICIPANT_LEFT: 'participant:left',
  PARTICIPANT_UPDATED: 'participant:updated',
  PRIZE_CREATED: 'prize:created',
  PRIZE_UPDATED: 'prize:updated',
  PRIZE_DELETED: 'prize:deleted',
  WINNER_SELECTED: 'winner:selected',
  WINNER_REMOVED: 'winner:removed',
  QUIZ_QUESTION_PUBLISHED: 'quiz:question_published',
  QUIZ_ANSWER_SUBMIT: 'quiz:answer_submit',
  QUIZ_ANSWER_RESULT: 'quiz:answer_result',
  NOTIFICATION_RECEIVED: 'notification:received',
  NOTIFICATION_MARK_READ: 'notification:mark_read',
  PRESENCE_USER_ONLINE: 'presence:user_online',
  PRESENCE_USER_OFFLINE: 'presence:user_offline',
  PRESENCE_GET_ONLINE: 'presence:get_online',
  TOKEN_EXPIRED: 'token:expired',
  ERROR: 'error',
});

/** The six error codes of the text's table. */
export const CODE = Object.freeze({
  AUTHENTICATION_FAILED: 'AUTHENTICATION_FAILED',
  PERMISSION_DENIED: 'PERMISSION_DENIED',
  ROOM_NOT_FOUND: 'ROOM_NOT_FOUND',
  INVALID_PAYLOAD: 'INVALID_PAYLOAD',
  RATE_LIMIT_EXCEEDED: 'RATE_LIMIT_EXCEEDED',
  APP_PERMISSION_DENIED: 'APP_PERMISSION_DENIED',
});

/** The one `connect_error` message the text shows; used for every auth failure. */
export const AUTH_FAILED_MESSAGE = 'Authentication failed: Invalid token';

/** The scope an application needs to publish (the text's `realtime:publish`). */
export const PUBLISH_SCOPE = 'realtime:publish';

export const ROOM_STATUSES = Object.freeze(['draft', 'active', 'paused', 'ended']);

/** Numbers the text sets, and the bounds this server adds (README, "Limits"). */
export const LIMITS = Object.freeze({
  clientEventsPerWindow: 100,
  clientWindowMs: 60_000,
  appEventsPerRoomPerSecond: 10,
  appEventsPerAppPerMinute: 600,
  /** A client event's arguments, as JSON. */
  clientPayloadBytes: 8 * 1024,
  /** One Engine.IO message (socket.io's maxHttpBufferSize). */
  engineMessageBytes: 64 * 1024,
  /** The body of any HTTP request this server reads. */
  httpBodyBytes: 64 * 1024,
  tokenChars: 8 * 1024,
  idChars: 128,
  nameChars: 200,
  textChars: 2000,
  urlChars: 2048,
  options: 10,
  /**
   * Quiz answers arriving this long after `startTime + timeLimit` still
   * count: `startTime` is cut to whole seconds, and the network takes time.
   */
  quizGraceMs: 1000,
});

/** Ids of every kind (user, room, app, question ...): what the text's examples use and uuids fit. */
export const ID_PATTERN = '[A-Za-z0-9_.:@-]{1,128}';
export const ID_RE = new RegExp(`^${ID_PATTERN}$`);

/**
 * ISO-8601 UTC at whole seconds, the form of the text's examples
 * (`2025-01-15T10:00:00Z`).
 */
export function isoSeconds(ms) {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

export function userView(user) {
  return { id: user.uid, name: user.name, avatar: user.avatar };
}

export function roomView(room) {
  return { id: room.id, name: room.title, status: room.status };
}

/** `member.kind` on the admin API, `role` on the wire. */
export const ROLE_OF_KIND = Object.freeze({ player: 'participant', mod: 'moderator' });

/** The participant of `participant:joined`. */
export function participantView(member, user) {
  return {
    id: member.id,
    userId: member.uid,
    role: ROLE_OF_KIND[member.kind],
    user: userView(user),
    joinedAt: isoSeconds(member.joinedAt),
  };
}

/** The participant of `participant:updated`: the text shows the user without avatar, and no joinedAt. */
export function participantUpdatedView(member, user) {
  return {
    id: member.id,
    userId: member.uid,
    role: ROLE_OF_KIND[member.kind],
    user: { id: user.uid, name: user.name },
  };
}

export function prizeView(reward) {
  return {
    id: reward.id,
    name: reward.label,
    description: reward.details,
    imageUrl: reward.image,
    quantity: reward.stock,
    quantityRemaining: reward.stock - reward.awarded,
    createdAt: isoSeconds(reward.createdAt),
  };
}

export function winnerView(winner, member, user, reward) {
  return {
    id: winner.id,
    participantId: member.id,
    prizeId: reward.id,
    participant: { id: member.id, user: userView(user) },
    prize: { id: reward.id, name: reward.label, imageUrl: reward.image },
    createdAt: isoSeconds(winner.createdAt),
  };
}

export function notificationView(n) {
  return {
    id: n.id,
    type: n.kind,
    title: n.title,
    message: n.body,
    data: n.data,
    read: n.read,
    createdAt: isoSeconds(n.createdAt),
  };
}

export function questionView(q, totalQuestions) {
  return {
    questionId: q.id,
    questionNumber: q.number,
    totalQuestions,
    question: q.prompt,
    options: q.choices,
    timeLimit: q.seconds,
    startTime: isoSeconds(q.publishedAt),
  };
}
