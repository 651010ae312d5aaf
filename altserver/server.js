#!/usr/bin/env node
/**
 * altserver: a second implementation of the platform's Socket.IO protocol,
 * written from the protocol text on Node's official `socket.io` 4, as a
 * conformance target unlike our reference server (README.md says how and
 * where it chooses differently).
 *
 * This file is the command line: parse the flags into a config, start the
 * Socket.IO port (with the protocol's two REST endpoints) and the admin
 * port, print one JSON line with both addresses when ready, stop on
 * SIGTERM/SIGINT. `start(config)` is exported for embedding.
 *
 * @module server
 */

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { adminApi } from './admin.js';
import { publicApi } from './api.js';
import { Auth } from './auth.js';
import { BUGS, Bugs } from './bugs.js';
import { serve } from './http.js';
import { ID_RE, LIMITS } from './protocol.js';
import { Realtime } from './realtime.js';
import { MAX, Store } from './store.js';

export const USAGE = `Usage: node server.js [OPTIONS]

Options:
  --listen HOST:PORT          Socket.IO and the protocol's REST endpoints [default: 127.0.0.1:0]
  --admin-listen HOST:PORT    The admin API (/admin/v2) [default: 127.0.0.1:0]
  --jwt-secret SECRET         Verify HS256 tokens with SECRET [env: ALTSERVER_JWT_SECRET]
  --jwt-public-key FILE       Verify RS256 tokens with this PEM public key
  --jwt-private-key FILE      RS256 private key (PEM) to sign refreshed tokens; implies the public key
  --admin-key KEY             Admin API key: Authorization: Token KEY [env: ALTSERVER_ADMIN_KEY]
  --users FILE                Seed users from a JSON list of {id, name, avatar}
  --transports LIST           websocket, polling or polling,websocket [default: polling,websocket]
  --access-ttl SECONDS        Lifetime of access tokens from /api/auth/refresh [default: 900]
  --refresh-ttl SECONDS       Lifetime of refresh tokens from /api/auth/refresh [default: 604800]
  --token-grace SECONDS       From token:expired to the server closing the socket [default: 60]
  --client-rate-limit N       Client events per connection per window [default: 100]
  --client-rate-window-ms MS  Length of that window [default: 60000]
  --bug NAME                  Switch on a deliberate protocol violation (repeatable) [env: ALTSERVER_BUGS=a,b]
  -h, --help                  Print this help

Without --jwt-secret/--jwt-public-key/--jwt-private-key and --admin-key the
server uses development values (and says so); it refuses to listen beyond
loopback unless both are given.
Prints {"socket":"http://HOST:PORT","admin":"http://HOST:PORT"} on stdout when ready.`;

const DEV_SECRET = 'altserver-dev-secret';
const DEV_ADMIN_KEY = 'altserver-dev-admin-key';

const log = (msg) => process.stderr.write(`altserver: ${msg}\n`);

/** A usage error: exit code 2 with the message. */
class UsageError extends Error {}

function hostPort(flag, value) {
  const m = /^(.+):(\d{1,5})$/.exec(value);
  if (!m || Number(m[2]) > 65535) throw new UsageError(`${flag} wants HOST:PORT, got \`${value}\``);
  const host = m[1].replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(m[2]) };
}

function isLoopback(host) {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

function positiveInt(flag, value, fallback) {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new UsageError(`${flag} wants a positive integer, got \`${value}\``);
  return Number(value);
}

function readUsers(file) {
  let list;
  try {
    list = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`--users ${file}: ${err.message}`);
  }
  if (!Array.isArray(list) || list.length > MAX.users) throw new UsageError(`--users ${file}: a JSON list of at most ${MAX.users} users`);
  return list.map((u, i) => {
    const ok =
      u &&
      typeof u.id === 'string' &&
      ID_RE.test(u.id) &&
      typeof u.name === 'string' &&
      u.name.length > 0 &&
      u.name.length <= LIMITS.nameChars &&
      (u.avatar === undefined || u.avatar === null || (typeof u.avatar === 'string' && u.avatar.length <= LIMITS.urlChars));
    if (!ok) throw new UsageError(`--users ${file}: entry ${i} must be {id, name, avatar?} (id matching ${ID_RE.source})`);
    return u;
  });
}

const STRING_FLAGS = [
  'listen',
  'admin-listen',
  'jwt-secret',
  'jwt-public-key',
  'jwt-private-key',
  'admin-key',
  'users',
  'transports',
  'access-ttl',
  'refresh-ttl',
  'token-grace',
  'client-rate-limit',
  'client-rate-window-ms',
];

/** Parses argv and the environment into a config; throws UsageError. */
export function parseConfig(argv, env = process.env) {
  const { values: o } = parseArgs({
    args: argv,
    options: {
      ...Object.fromEntries(STRING_FLAGS.map((f) => [f, { type: 'string' }])),
      bug: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (o.help) return { help: true };

  const listen = hostPort('--listen', o.listen ?? '127.0.0.1:0');
  const adminListen = hostPort('--admin-listen', o['admin-listen'] ?? '127.0.0.1:0');
  const secret = o['jwt-secret'] ?? env.ALTSERVER_JWT_SECRET;
  const publicKeyFile = o['jwt-public-key'];
  const privateKeyFile = o['jwt-private-key'];
  if (secret !== undefined && (publicKeyFile || privateKeyFile))
    throw new UsageError('use either --jwt-secret (HS256) or RS256 keys, not both');
  if (secret === '') throw new UsageError('--jwt-secret must not be empty');
  const keyGiven = secret !== undefined || publicKeyFile !== undefined || privateKeyFile !== undefined;
  const adminKey = o['admin-key'] ?? env.ALTSERVER_ADMIN_KEY;
  if (adminKey === '') throw new UsageError('--admin-key must not be empty');
  if ((!isLoopback(listen.host) || !isLoopback(adminListen.host)) && !(keyGiven && adminKey !== undefined)) {
    throw new UsageError('listening beyond loopback needs --admin-key and --jwt-secret or an RS256 key given explicitly');
  }

  const read = (flag, file) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new UsageError(`${flag} ${file}: ${err.message}`);
    }
  };
  const transports = (o.transports ?? 'polling,websocket').split(',');
  if (
    transports.length === 0 ||
    transports.some((t) => t !== 'polling' && t !== 'websocket') ||
    new Set(transports).size !== transports.length
  ) {
    throw new UsageError(`--transports wants websocket, polling or polling,websocket, got \`${o.transports}\``);
  }
  const bugNames = [...(env.ALTSERVER_BUGS ?? '').split(',').filter(Boolean), ...(o.bug ?? [])];
  const unknown = bugNames.filter((b) => !Object.hasOwn(BUGS, b));
  if (unknown.length) throw new UsageError(`unknown --bug ${unknown.join(', ')} (known: ${Object.keys(BUGS).join(', ')})`);

  return {
    listen,
    adminListen,
    auth: {
      secret: keyGiven ? secret : DEV_SECRET,
      publicKeyPem: publicKeyFile && read('--jwt-public-key', publicKeyFile),
      privateKeyPem: privateKeyFile && read('--jwt-private-key', privateKeyFile),
      accessTtl: positiveInt('--access-ttl', o['access-ttl'], 900),
      refreshTtl: positiveInt('--refresh-ttl', o['refresh-ttl'], 7 * 86400),
    },
    devSecret: !keyGiven,
    adminKey: adminKey ?? DEV_ADMIN_KEY,
    devAdminKey: adminKey === undefined,
    users: o.users ? readUsers(o.users) : [],
    transports,
    tokenGraceMs: positiveInt('--token-grace', o['token-grace'], 60) * 1000,
    clientLimit: positiveInt('--client-rate-limit', o['client-rate-limit'], LIMITS.clientEventsPerWindow),
    clientWindowMs: positiveInt('--client-rate-window-ms', o['client-rate-window-ms'], LIMITS.clientWindowMs),
    bugs: bugNames,
  };
}

function listenOn(server, { host, port }) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const a = server.address();
      resolve(`http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`);
    });
  });
}

/** Slow or half-sent requests must not hold sockets (long-polling answers within the ping interval). */
function hardened(server) {
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.maxHeadersCount = 100;
  return server;
}

/** Starts both servers; resolves to their URLs and a `close()`. */
export async function start(config) {
  const bugs = new Bugs(config.bugs);
  const store = new Store();
  for (const u of config.users) store.addUser({ uid: u.id, name: u.name, avatar: u.avatar ?? null });
  const auth = new Auth(config.auth);

  // Socket.IO takes its own path and hands every other request to the
  // listeners that were there before it attached: ours must come first.
  let handleApi;
  const socketServer = hardened(createServer((req, res) => handleApi(req, res)));
  const realtime = new Realtime({
    httpServer: socketServer,
    store,
    auth,
    bugs,
    transports: config.transports,
    tokenGraceMs: config.tokenGraceMs,
    clientLimit: config.clientLimit,
    clientWindowMs: config.clientWindowMs,
  });
  const api = publicApi({ store, auth, realtime, bugs });
  handleApi = serve(api.handle, log);
  const adminServer = hardened(createServer(serve(adminApi({ store, auth, realtime, api, bugs, adminKey: config.adminKey }), log)));

  const socketUrl = await listenOn(socketServer, config.listen);
  const adminUrl = await listenOn(adminServer, config.adminListen);
  return {
    socket: socketUrl,
    admin: adminUrl,
    close: async () => {
      adminServer.close();
      adminServer.closeAllConnections();
      await realtime.close();
    },
  };
}

async function main() {
  let config;
  try {
    config = parseConfig(process.argv.slice(2));
  } catch (err) {
    const badFlag = typeof err.code === 'string' && err.code.startsWith('ERR_PARSE_ARGS');
    if (!(err instanceof UsageError) && !badFlag) throw err;
    process.stderr.write(`altserver: ${err.message}\n\n${USAGE}\n`);
    process.exit(2);
  }
  if (config.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (config.devSecret) log(`no --jwt-secret or RS256 key: using the development secret \`${DEV_SECRET}\``);
  if (config.devAdminKey) log(`no --admin-key: using the development key \`${DEV_ADMIN_KEY}\``);
  if (config.bugs.length) log(`deliberate bugs on: ${config.bugs.join(', ')}`);

  const running = await start(config);
  process.stdout.write(`${JSON.stringify({ socket: running.socket, admin: running.admin })}\n`);

  let stopping = false;
  const stop = (signal) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
    // Sockets get a clean close; a stuck one cannot hold the process.
    setTimeout(() => process.exit(0), 3000).unref();
    running.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    log(err?.stack ?? String(err));
    process.exit(1);
  });
}
