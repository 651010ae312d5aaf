/**
 * Test fixtures: spawn the real server (`node server.js`, ephemeral
 * loopback ports, its one JSON line read from stdout), call its admin API
 * with `fetch`, sign tokens the way README.md tells an identity provider to
 * (a signer of its own, not the server's code), and drive Socket.IO with the
 * official client.
 *
 * Every wait is bounded; a server is stopped by its own PID.
 */

import { spawn } from 'node:child_process';
import { createHmac, createSign, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { io } from 'socket.io-client';

export const SECRET = 'test-secret';
export const ADMIN_KEY = 'test-admin-key';
const SERVER_JS = fileURLToPath(new URL('../server.js', import.meta.url));

/**
 * Starts the server with `args` (HS256 `SECRET` and `ADMIN_KEY` unless
 * `keys: false`); resolves once it printed its addresses.
 */
export async function startServer(args = [], { env = {}, keys = true } = {}) {
  const all = [
    SERVER_JS,
    '--listen',
    '127.0.0.1:0',
    '--admin-listen',
    '127.0.0.1:0',
    ...(keys ? ['--jwt-secret', SECRET, '--admin-key', ADMIN_KEY] : []),
    ...args,
  ];
  const proc = spawn(process.execPath, all, { env: { ...process.env, ALTSERVER_BUGS: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => (stderr += d));
  const line = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server not ready in 10 s; stderr: ${stderr}`)), 10_000);
    proc.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(out.slice(0, nl));
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before ready; stderr: ${stderr}`));
    });
  });
  const { socket, admin } = JSON.parse(line);
  const sockets = new Set();
  return {
    socket,
    admin,
    proc,
    stderr: () => stderr,
    /** Connects and remembers the socket, so `stop()` closes it. */
    connect: async (ns, token, opts) => {
      const s = await connect(`${socket}${ns}`, token, opts);
      sockets.add(s);
      return s;
    },
    stop: async () => {
      for (const s of sockets) s.disconnect();
      if (proc.exitCode !== null) return proc.exitCode;
      proc.kill('SIGTERM');
      const [code] = await once(proc, 'exit');
      return code;
    },
  };
}

/** One admin API call; `form` sends x-www-form-urlencoded instead of JSON. */
export async function adminCall(srv, method, path, body, { form = false, key = ADMIN_KEY } = {}) {
  const headers = {};
  if (key !== null) headers.authorization = `Token ${key}`;
  let payload;
  if (body !== undefined) {
    headers['content-type'] = form ? 'application/x-www-form-urlencoded' : 'application/json';
    payload = form ? new URLSearchParams(body).toString() : JSON.stringify(body);
  }
  const res = await fetch(`${srv.admin}/admin/v2${path}`, { method, headers, body: payload });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

/** An admin call that must answer `status`; returns the answer. */
export async function adminOk(srv, method, path, body, status, opts) {
  const r = await adminCall(srv, method, path, body, opts);
  if (r.status !== status) throw new Error(`${method} ${path}: expected ${status}, got ${r.status} ${JSON.stringify(r.body)}`);
  return r;
}

const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');

/** A JWT as README.md's "Tokens" says: header {alg, typ}, claims {sub, iat, exp, jti?, typ?}. */
export function signToken(claims, { alg = 'HS256', secret = SECRET, privateKey } = {}) {
  const data = `${b64({ alg, typ: 'JWT' })}.${b64(claims)}`;
  const sig = alg === 'HS256' ? createHmac('sha256', secret).update(data).digest() : createSign('RSA-SHA256').update(data).sign(privateKey);
  return `${data}.${sig.toString('base64url')}`;
}

/** An access token for `uid`, valid `ttl` seconds (negative: already expired). */
export function tokenFor(uid, { ttl = 3600, jti = `t-${randomUUID()}`, ...rest } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return signToken({ sub: uid, iat: now, exp: now + ttl, ...(jti ? { jti } : {}) }, rest);
}

export async function createUser(srv, name = 'Ann', extra = {}) {
  const r = await adminOk(srv, 'POST', '/users', { display_name: name, avatar_url: `https://img.example/${name}.png`, ...extra }, 201, {
    form: true,
  });
  return { uid: r.body.user.uid, name, avatar: `https://img.example/${name}.png` };
}

/** A user and a token for them. */
export async function userWithToken(srv, name, opts) {
  const user = await createUser(srv, name);
  return { ...user, token: tokenFor(user.uid, opts) };
}

/** A new user whose socket on `/` is subscribed to `roomId`: `{uid, name, avatar, token, s}`. */
export async function subscribedUser(srv, roomId, name = 'Watcher') {
  const u = await userWithToken(srv, name);
  const s = await srv.connect('/', u.token);
  await ack(s, 'room:subscribe', { roomId });
  return { ...u, s };
}

export async function createRoom(srv, { title = 'Room', isPrivate = false } = {}) {
  const r = await adminOk(srv, 'POST', '/rooms', { title, isPrivate }, 201);
  return r.headers.get('location').split('/').pop();
}

export async function addMember(srv, roomId, uid, kind = 'player') {
  return (await adminOk(srv, 'POST', `/rooms/${roomId}/members`, { uid, kind }, 201)).body;
}

/** Connects; rejects with the `connect_error` (message and data). */
export function connect(url, token, { transports = ['websocket'], auth } = {}) {
  const socket = io(url, {
    auth: auth ?? (token === undefined ? {} : { token }),
    transports,
    forceNew: true,
    reconnection: false,
    timeout: 5000,
  });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err) => {
      socket.close();
      reject(err);
    });
  });
}

/** The next `event` on `socket` (its first argument, or all with `all`). */
export function waitFor(socket, event, { timeout = 3000, all = false } = {}) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, on);
      reject(new Error(`no \`${event}\` within ${timeout} ms`));
    }, timeout);
    function on(...args) {
      clearTimeout(timer);
      socket.off(event, on);
      resolve(all ? args : args[0]);
    }
    socket.on(event, on);
  });
}

/** Emits with an ack; rejects when the ack does not come within `timeout`. */
export function ack(socket, event, payload, timeout = 3000) {
  return socket.timeout(timeout).emitWithAck(event, payload);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** ISO-8601 UTC at whole seconds, within 5 minutes of now. */
export function isRecentIso(ts) {
  return typeof ts === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(ts) && Math.abs(Date.parse(ts) - Date.now()) < 5 * 60_000;
}

/**
 * Resolves once a notification sent now reaches `socket` (a `/` socket of
 * user `uid`). The server writes a socket's packets in order, so whatever
 * it sent that socket before is in by then: no timing guess decides that
 * something did not come.
 */
export async function barrier(srv, uid, socket) {
  const marker = waitFor(socket, 'notification:received', { timeout: 5000 });
  await adminOk(srv, 'POST', `/users/${uid}/notifications`, { kind: 'marker', title: 'marker', body: 'marker' }, 201);
  await marker;
}

/** Every `event` that reaches `socket` (of user `uid`, on `/`) during `trigger()` and up to a barrier after it. */
export async function collectUntilNotified(srv, uid, socket, event, trigger) {
  const got = [];
  const on = (...args) => got.push(args.length === 1 ? args[0] : args);
  socket.on(event, on);
  try {
    await trigger();
    await barrier(srv, uid, socket);
  } finally {
    socket.off(event, on);
  }
  return got;
}
