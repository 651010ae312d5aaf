/**
 * JWT verification and signing with `node:crypto` (no JWT library), and the
 * revocation lists.
 *
 * This server mints no tokens over its admin API: an identity provider (or
 * a test runner holding the same secret or key) signs access tokens, this
 * server verifies them. It signs only the tokens `POST /api/auth/refresh`
 * hands out, with the same key (RS256 needs `--jwt-private-key` for that).
 * What a signer must put in a token is in the README ("Tokens").
 *
 * One algorithm per server (HS256 or RS256) and the token's `alg` must be
 * that one, which shuts out `alg: none` and the RS256/HS256 key confusion.
 *
 * @module auth
 */

import { createHmac, createPublicKey, createPrivateKey, randomBytes, randomUUID, sign, timingSafeEqual, verify } from 'node:crypto';
import { ID_RE, LIMITS } from './protocol.js';

const B64URL = /^[A-Za-z0-9_-]*$/;
/** A token's `iat` may be this far ahead of our clock (the signer's clock skew). */
const IAT_SKEW_S = 60;
const MAX_REVOKED_JTI = 100_000;

const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');

function parseJsonPart(part) {
  if (!B64URL.test(part)) return null;
  try {
    const v = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}

/** Why a token was refused (never sent to clients: every failure has one message). */
export class TokenError extends Error {
  /** @param {'malformed'|'algorithm'|'signature'|'claims'|'expired'|'not_yet_valid'|'wrong_type'|'revoked'|'unknown_user'|'no_signing_key'} reason */
  constructor(reason) {
    super(`token refused: ${reason}`);
    this.reason = reason;
  }
}

export class Auth {
  /**
   * @param {object} o
   * @param {string} [o.secret] HS256 secret
   * @param {string} [o.publicKeyPem] RS256 public key (PEM)
   * @param {string} [o.privateKeyPem] RS256 private key (PEM), to sign refreshed tokens
   * @param {number} o.accessTtl seconds
   * @param {number} o.refreshTtl seconds
   */
  constructor({ secret, publicKeyPem, privateKeyPem, accessTtl, refreshTtl }) {
    this.accessTtl = accessTtl;
    this.refreshTtl = refreshTtl;
    if (secret !== undefined) {
      this.alg = 'HS256';
      this.secret = Buffer.from(secret, 'utf8');
    } else {
      this.alg = 'RS256';
      this.privateKey = privateKeyPem ? createPrivateKey(privateKeyPem) : null;
      this.publicKey = publicKeyPem ? createPublicKey(publicKeyPem) : createPublicKey(this.privateKey);
      for (const k of [this.publicKey, this.privateKey]) {
        if (k && k.asymmetricKeyType !== 'rsa') throw new Error(`RS256 needs an RSA key, got ${k.asymmetricKeyType}`);
      }
    }
    /** jti -> revoked at (ms) */
    this.revokedJti = new Map();
    /** uid -> every token of theirs with iat <= this (seconds) is revoked */
    this.revokedUsers = new Map();
  }

  get canSign() {
    return this.alg === 'HS256' || this.privateKey !== null;
  }

  /**
   * Verifies signature, time claims, `typ` and revocation; returns the
   * claims or throws TokenError. `expiryIgnored` is for the bug that
   * accepts expired tokens.
   *
   * @param {'access'|'refresh'} typ
   */
  verify(token, typ, { now = Date.now(), expiryIgnored = false } = {}) {
    if (typeof token !== 'string' || token.length === 0 || token.length > LIMITS.tokenChars) throw new TokenError('malformed');
    const parts = token.split('.');
    if (parts.length !== 3 || !B64URL.test(parts[2])) throw new TokenError('malformed');
    const header = parseJsonPart(parts[0]);
    const claims = parseJsonPart(parts[1]);
    if (!header || !claims) throw new TokenError('malformed');
    if (header.alg !== this.alg || header.crit !== undefined) throw new TokenError('algorithm');
    const signed = Buffer.from(`${parts[0]}.${parts[1]}`);
    const sig = Buffer.from(parts[2], 'base64url');
    if (!this.#signatureOk(signed, sig)) throw new TokenError('signature');

    const nowS = now / 1000;
    const { sub, exp, iat, nbf, jti } = claims;
    if (typeof sub !== 'string' || !ID_RE.test(sub)) throw new TokenError('claims');
    if (!Number.isFinite(exp) || !Number.isFinite(iat)) throw new TokenError('claims');
    if (jti !== undefined && (typeof jti !== 'string' || jti.length === 0 || jti.length > LIMITS.idChars)) throw new TokenError('claims');
    if (iat > nowS + IAT_SKEW_S || (nbf !== undefined && !(Number.isFinite(nbf) && nbf <= nowS + IAT_SKEW_S))) {
      throw new TokenError('not_yet_valid');
    }
    if (exp <= nowS && !expiryIgnored) throw new TokenError('expired');
    const isRefresh = claims.typ === 'refresh';
    if (typ === 'refresh' ? !isRefresh : claims.typ !== undefined && claims.typ !== 'access') throw new TokenError('wrong_type');
    if (this.isRevoked(claims)) throw new TokenError('revoked');
    return claims;
  }

  #signatureOk(signed, sig) {
    if (this.alg === 'HS256') {
      const want = createHmac('sha256', this.secret).update(signed).digest();
      return sig.length === want.length && timingSafeEqual(sig, want);
    }
    return verify('sha256', signed, this.publicKey, sig);
  }

  isRevoked(claims) {
    if (claims.jti !== undefined && this.revokedJti.has(claims.jti)) return true;
    const before = this.revokedUsers.get(claims.sub);
    return before !== undefined && claims.iat <= before;
  }

  revokeJti(jti, now = Date.now()) {
    // The list is bounded; past the bound the oldest revocation goes first
    // (by then the token it named has most likely expired).
    if (this.revokedJti.size >= MAX_REVOKED_JTI) this.revokedJti.delete(this.revokedJti.keys().next().value);
    this.revokedJti.set(jti, now);
  }

  /** Revokes every token of `uid` issued in this second or before. */
  revokeUser(uid, now = Date.now()) {
    this.revokedUsers.set(uid, Math.floor(now / 1000));
  }

  /** Signs `claims` with this server's key (HS256 secret or RS256 private key). */
  sign(claims) {
    if (!this.canSign) throw new TokenError('no_signing_key');
    const data = `${b64({ alg: this.alg, typ: 'JWT' })}.${b64(claims)}`;
    const sig =
      this.alg === 'HS256' ? createHmac('sha256', this.secret).update(data).digest() : sign('sha256', Buffer.from(data), this.privateKey);
    return `${data}.${sig.toString('base64url')}`;
  }

  /**
   * A new access and refresh token for `uid`. With `wrongKey` the access
   * token is signed with a random HS256 key (the `refresh-broken` bug).
   */
  issue(uid, { now = Date.now(), wrongKey = false } = {}) {
    const iat = Math.floor(now / 1000);
    const access = { sub: uid, iat, exp: iat + this.accessTtl, jti: `at-${randomUUID()}` };
    const refresh = { sub: uid, iat, exp: iat + this.refreshTtl, jti: `rt-${randomUUID()}`, typ: 'refresh' };
    const accessToken = wrongKey
      ? new Auth({ secret: randomBytes(32).toString('hex'), accessTtl: 0, refreshTtl: 0 }).sign(access)
      : this.sign(access);
    return { accessToken, refreshToken: this.sign(refresh), expiresIn: this.accessTtl };
  }
}
