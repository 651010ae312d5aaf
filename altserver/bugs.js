/**
 * Switchable bugs: deliberate deviations from the protocol text, so a fault
 * test can prove that a conformance case fails when a server is wrong.
 *
 * Adding one is two steps: an entry in `BUGS` (name and what it breaks; a
 * test checks that the README lists exactly these names) and an
 * `if (bugs.on('name'))` where the behaviour changes. `on()` refuses names
 * that are not in the table, so a typo fails loudly instead of testing
 * nothing.
 *
 * @module bugs
 */

export const BUGS = Object.freeze({
  'ns-no-auth': 'the room namespace /rooms/:roomId accepts connections without a token or with a bad one (as a guest)',
  'root-no-auth': 'the default namespace / accepts connections without a token or with a bad, revoked or unknown user\'s one (as a guest)',
  'room-ns-closed': 'every connection to /rooms/:roomId is refused with Permission denied',
  'room-ns-unknown-open': '/rooms/:roomId of a room that does not exist accepts the connection (it hears nothing)',
  'no-upgrade': 'long-polling sessions are never upgraded to WebSocket',
  'root-no-auth-check-expiry': 'the default namespace / accepts expired access tokens',
  'leak-rooms': 'room events go to every socket connected to /, subscribed or not',
  'leak-namespaces': "room events also go to every other room's namespace",
  'unsubscribe-keeps': 'room:unsubscribe acks and sends room:unsubscribed but the socket keeps receiving the room',
  'revocation-ignores-live': 'revoking a token (by jti or by user) leaves its live sockets connected',
  'removal-keeps': 'removing a member from a private room keeps their sockets subscribed',
  'private-open': 'private rooms admit every authenticated user',
  'no-rate-limit': 'client events are never limited',
  'over-limit-processed': 'over a rate limit the event gets RATE_LIMIT_EXCEEDED but is processed (and delivered) anyway',
  'rate-window-never-resets': 'rate-limit windows never end: once over, always over',
  'no-validation': 'client event payloads are not validated (missing or mistyped fields reach the handlers)',
  'duplicate-events': 'every broadcast is sent twice',
  'no-presence-offline': 'presence:user_offline is never sent',
  'no-token-expired': 'no token:expired while connected, and an expired connection keeps working',
  'refresh-broken': 'POST /api/auth/refresh answers 200 with an access token signed by the wrong key',
  'stale-timestamps': 'every `timestamp` field is 10 minutes in the past',
  'wrong-error-code': 'ROOM_NOT_FOUND is answered as PERMISSION_DENIED',
  'no-ack': 'client events are never acknowledged',
  'ack-no-success': 'success acks lack `success`',
  'room-id-renamed': 'room events carry `room_id` instead of `roomId`',
  'app-scope-unchecked': 'applications without the realtime:publish scope may publish',
  'notifications-to-all': 'notification:received goes to every socket on /, not only the user\'s',
  'notifications-on-namespaces': 'notification:received also goes to the user\'s sockets on room namespaces',
  'app-prefix-unchecked': 'application events are accepted whatever their name ({appId}: prefix not checked)',
  'app-rate-unlimited': 'application events are never rate limited (neither per room nor per app)',
  'quiz-codes-swapped': 'a refused quiz answer gets PERMISSION_DENIED where it should get INVALID_PAYLOAD, and the reverse',
  'quiz-unchecked': 'quiz answers are accepted to unpublished questions, after the time limit, and whatever they say',
  'mark-read-anyone': "notification:mark_read marks another user's notification read",
  'quiz-rank-wrong': 'quiz:answer_submit and quiz:answer_result always say rank 1',
});

/** The set of bugs switched on for one server. */
export class Bugs {
  /** @param {Iterable<string>} names */
  constructor(names = []) {
    this.active = new Set();
    for (const name of names) {
      if (!Object.hasOwn(BUGS, name)) {
        throw new Error(`unknown bug \`${name}\` (known: ${Object.keys(BUGS).join(', ')})`);
      }
      this.active.add(name);
    }
  }

  /** Whether `name` is switched on; throws for a name `BUGS` does not list. */
  on(name) {
    if (!Object.hasOwn(BUGS, name)) throw new Error(`bugs.on: unknown bug \`${name}\``);
    return this.active.has(name);
  }
}
