/**
 * The two REST endpoints the protocol text itself names, served on the
 * Socket.IO port as the text shows them: `POST /api/rooms/:roomId/events`
 * (an application publishes an event into a room) and
 * `POST /api/auth/refresh` (a refresh token buys a new access token).
 * Everything else an operator does is the admin API, on its own port.
 *
 * Errors are problem documents (see `http.js`) whose `code` is one of the
 * protocol's six codes.
 *
 * @module api
 */

import { TokenError } from './auth.js';
import { HttpError, compileRoutes, findRoute, mediaType, readBody, requestPath, sendJson } from './http.js';
import { CODE, LIMITS, PUBLISH_SCOPE } from './protocol.js';
import { FixedWindows } from './ratelimit.js';

/** Names Socket.IO keeps for itself; no application may emit them. */
const RESERVED = new Set(['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener', 'error']);
const EVENT_NAME_RE = /^[A-Za-z0-9_.:-]{1,128}$/;

const invalid = (detail) => new HttpError(400, CODE.INVALID_PAYLOAD, detail);
const authFailed = (scheme) => new HttpError(401, CODE.AUTHENTICATION_FAILED, 'Invalid token', {}, { 'www-authenticate': scheme });

/**
 * The text's own refresh example posts `JSON.stringify(...)` with no
 * Content-Type, which fetch sends as text/plain: so JSON is read from
 * those too, and only other media types are refused.
 */
const JSON_TYPES = new Set(['application/json', 'text/plain', '']);

async function jsonBody(req) {
  if (!JSON_TYPES.has(mediaType(req))) throw invalid('the body must be JSON');
  const raw = await readBody(req);
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw invalid('the body is not JSON');
  }
}

/**
 * @param {object} o
 * @param {import('./store.js').Store} o.store
 * @param {import('./auth.js').Auth} o.auth
 * @param {import('./realtime.js').Realtime} o.realtime
 * @param {import('./bugs.js').Bugs} o.bugs
 * @returns the request handler for the Socket.IO port (Socket.IO takes its own path first)
 */
export function publicApi({ store, auth, realtime, bugs }) {
  const neverResets = bugs.on('rate-window-never-resets');
  const perRoom = new FixedWindows(LIMITS.appEventsPerRoomPerSecond, 1000, { neverResets });
  const perApp = new FixedWindows(LIMITS.appEventsPerAppPerMinute, 60_000, { neverResets });

  async function publish(req, res, { roomId }) {
    const bearer = /^Bearer ([\x21-\x7e]{1,512})$/.exec(req.headers.authorization ?? '');
    const appId = req.headers['x-app-id'];
    const app = bearer && typeof appId === 'string' ? store.appByKey(appId, bearer[1]) : null;
    if (!app) throw authFailed('Bearer');
    if (!app.scopes.has(PUBLISH_SCOPE) && !bugs.on('app-scope-unchecked'))
      throw new HttpError(403, CODE.APP_PERMISSION_DENIED, `the app lacks the \`${PUBLISH_SCOPE}\` scope`);

    const body = await jsonBody(req);
    // The app may have been deleted while its body arrived.
    if (store.apps.get(app.id) !== app) throw authFailed('Bearer');
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw invalid('the body must be an object {event, data}');
    const { event, data } = body;
    if (typeof event !== 'string' || !EVENT_NAME_RE.test(event) || RESERVED.has(event))
      throw invalid('`event` must be a name like `<appId>:<action>`');
    if (data === undefined) throw invalid('`data` is missing');
    const prefix = `${app.id}:`;
    if (!(event.startsWith(prefix) && event.length > prefix.length) && !bugs.on('app-prefix-unchecked')) {
      throw new HttpError(403, CODE.APP_PERMISSION_DENIED, `event names of this app must start with \`${prefix}\``);
    }
    const room = store.rooms.get(roomId);
    if (!room) throw new HttpError(404, CODE.ROOM_NOT_FOUND, `room ${roomId} does not exist`);

    if (!bugs.on('app-rate-unlimited')) {
      const now = Date.now();
      // A request refused by one limit is not counted by the other.
      const full = !perRoom.allows(room.id, now) ? perRoom : !perApp.allows(app.id, now) ? perApp : null;
      if (full) {
        if (bugs.on('over-limit-processed')) realtime.roomEmit(room.id, event, data, { timestamp: realtime.stamp() });
        const key = full === perRoom ? room.id : app.id;
        const retry = Math.max(1, Math.ceil(full.retryAfterMs(key, now) / 1000));
        throw new HttpError(
          429,
          CODE.RATE_LIMIT_EXCEEDED,
          full === perRoom ? `at most ${perRoom.limit} events per second in a room` : `at most ${perApp.limit} events per minute per app`,
          {},
          { 'retry-after': String(retry) },
        );
      }
      perRoom.take(room.id, now);
      perApp.take(app.id, now);
    }
    // The data exactly as the application sent it; the timestamp every
    // event carries goes in a second argument, so the data stays untouched.
    const timestamp = realtime.stamp();
    realtime.roomEmit(room.id, event, data, { timestamp });
    sendJson(res, 202, { event, roomId: room.id, acceptedAt: timestamp });
  }

  async function refresh(req, res) {
    const body = await jsonBody(req);
    const token = body?.refreshToken;
    if (typeof token !== 'string') throw invalid('`refreshToken` must be a string');
    let claims;
    try {
      claims = auth.verify(token, 'refresh');
    } catch (err) {
      if (err instanceof TokenError) throw authFailed('Bearer');
      throw err;
    }
    if (!store.users.has(claims.sub)) throw authFailed('Bearer');
    if (!auth.canSign)
      throw new HttpError(
        501,
        'NOT_CONFIGURED',
        'this server verifies RS256 tokens but has no private key to sign new ones (--jwt-private-key)',
      );
    sendJson(res, 200, auth.issue(claims.sub, { wrongKey: bugs.on('refresh-broken') }), { 'cache-control': 'no-store' });
  }

  const routes = compileRoutes([
    ['POST', '/api/rooms/:roomId/events', publish],
    ['POST', '/api/auth/refresh', refresh],
  ]);

  return {
    handle: async (req, res) => {
      const path = requestPath(req);
      const found = findRoute(routes, req.method, path);
      if (!found) throw new HttpError(404, 'NOT_FOUND', `no ${req.method} ${path} here`);
      await found.handler(req, res, found.params);
    },
    /** Forgets a deleted room's or app's window. */
    forgetRoom: (roomId) => perRoom.forget(roomId),
    forgetApp: (appId) => perApp.forget(appId),
  };
}
