/**
 * The little HTTP layer both HTTP surfaces share (the protocol's two REST
 * endpoints on the Socket.IO port, the admin API on its own port): a
 * bounded body reader, a path router and one error body.
 *
 * Errors are RFC 9457 problem documents (`application/problem+json`:
 * `{type, title, status, code, detail}`), this server's own shape; `code`
 * is one of the protocol's error codes on the protocol's endpoints and a
 * lower-case word on the admin API.
 *
 * @module http
 */

import { STATUS_CODES } from 'node:http';
import { LIMITS } from './protocol.js';

export class HttpError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} detail
   * @param {Record<string, unknown>} [extra] more members of the problem document
   * @param {Record<string, string>} [headers]
   */
  constructor(status, code, detail, extra = {}, headers = {}) {
    super(detail);
    Object.assign(this, { status, code, extra, headers });
  }
}

export function sendJson(res, status, body, headers = {}) {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    ...(text ? { 'content-type': 'application/json' } : {}),
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function sendProblem(res, err) {
  const body = {
    type: 'about:blank',
    title: STATUS_CODES[err.status],
    status: err.status,
    code: err.code,
    detail: err.message,
    ...err.extra,
  };
  const text = JSON.stringify(body);
  res.writeHead(err.status, { 'content-type': 'application/problem+json', 'content-length': Buffer.byteLength(text), ...err.headers });
  res.end(text);
}

/** Reads the whole body, refusing more than `limit` bytes before buffering them. */
export function readBody(req, limit = LIMITS.httpBodyBytes) {
  return new Promise((resolve, reject) => {
    // Beyond the limit the rest is drained unbuffered (the server's
    // requestTimeout bounds how long), so the 413 still reaches the client.
    const tooLarge = () => {
      req.removeAllListeners('data');
      req.resume();
      reject(new HttpError(413, 'too_large', `the body is over ${limit} bytes`, {}, { connection: 'close' }));
    };
    if (Number(req.headers['content-length']) > limit) return tooLarge();
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) return tooLarge();
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** The media type of the request, lower-case, without parameters. */
export function mediaType(req) {
  return (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
}

/**
 * Matches `req` against `routes` (`[method, pattern, handler]`, patterns
 * with `:name` segments) and runs the handler with the decoded params;
 * `null` when no path matches. A path that matches with another method
 * is 405 with `Allow`.
 */
export function compileRoutes(routes) {
  return routes.map(([method, pattern, handler]) => {
    const names = [];
    const re = new RegExp(
      `^${pattern.replace(/:([a-zA-Z]+)/g, (_, n) => {
        names.push(n);
        return '([^/]+)';
      })}$`,
    );
    return { method, re, names, handler };
  });
}

export function findRoute(compiled, method, path) {
  const allowed = [];
  for (const r of compiled) {
    const m = r.re.exec(path);
    if (!m) continue;
    if (r.method !== method) {
      allowed.push(r.method);
      continue;
    }
    const params = {};
    try {
      r.names.forEach((n, i) => (params[n] = decodeURIComponent(m[i + 1])));
    } catch {
      throw new HttpError(400, 'bad_path', 'the path is not valid percent-encoding');
    }
    return { handler: r.handler, params };
  }
  if (allowed.length) throw new HttpError(405, 'method_not_allowed', `use ${allowed.join(', ')}`, {}, { allow: allowed.join(', ') });
  return null;
}

/** The path of a request, or a 400. */
export function requestPath(req) {
  try {
    return new URL(req.url, 'http://host').pathname;
  } catch {
    throw new HttpError(400, 'bad_path', 'the request target is not a path');
  }
}

/** Runs an async request handler; a thrown HttpError becomes its problem document, anything else a 500. */
export function serve(handler, log) {
  return (req, res) => {
    handler(req, res).catch((err) => {
      if (!(err instanceof HttpError)) {
        log(`internal error on ${req.method} ${req.url}: ${err?.stack ?? err}`);
        err = new HttpError(500, 'internal', 'internal error');
      }
      if (!res.headersSent) sendProblem(res, err);
      else res.destroy();
    });
  };
}
