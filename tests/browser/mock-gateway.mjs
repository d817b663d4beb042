// Mock of presence-gateway's HTTP API (docs/protocol.md section 3) with an in-memory store
// and Server-Sent Events, so the dashboard can be developed and tested without
// the C daemons. Not a reference implementation: only what the page needs.
//
// Standalone:  node mock-gateway.mjs [--port 8080] [--seed 120]
//   prints an admin token and a user token, serves gateway/web/ at /.
// As a module: startMockGateway({port, seed, timeoutS}) -> {url, mintToken,
//   dropEventStreams(), sendResync(), close()}.

import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const WEB_DIR = path.resolve(HERE, '../../gateway/web');
const USER_RE = /^[A-Za-z0-9._@:-]{1,64}$/;
const STATES = ['online', 'away', 'offline'];
const ACCOUNTS = ['active', 'pending', 'inactive', 'suspended', 'banned'];
const RING = 1000; // changes kept for Last-Event-ID replay

const b64url = (buf) => Buffer.from(buf).toString('base64url');

export function startMockGateway(opts = {}) {
    const secret = opts.secret || crypto.randomBytes(32);
    const timeoutMs = Math.round((opts.timeoutS ?? 120) * 1000);
    const heartbeatS = opts.heartbeatS ?? 30;
    const users = new Map(); // user -> {user, last_seen, account, sessions: Map(id -> {deadline, state})}
    const revoked = new Set();
    const changes = []; // ring of the last RING changes
    const streams = new Set();
    let seq = 0;
    let held = null; // queued account changes while holdAccountChanges() is on
    const counters = { applied: 0, refused: 0, lost: 0 };

    function mintToken(user, { admin = false, ttlS = 3600 } = {}) {
        const now = Math.floor(Date.now() / 1000);
        const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
        const claims = { sub: user, iat: now, exp: now + ttlS, jti: crypto.randomUUID() };
        if (admin) claims.role = 'admin';
        const body = b64url(JSON.stringify(claims));
        const sig = b64url(crypto.createHmac('sha256', secret).update(`${head}.${body}`).digest());
        return `${head}.${body}.${sig}`;
    }

    function verify(req) {
        const m = /^Bearer\s+(\S+)$/.exec(req.headers.authorization || '');
        if (!m) return { error: 'missing bearer token' };
        const parts = m[1].split('.');
        if (parts.length !== 3) return { error: 'malformed token' };
        let head, claims;
        try {
            head = JSON.parse(Buffer.from(parts[0], 'base64url'));
            claims = JSON.parse(Buffer.from(parts[1], 'base64url'));
        } catch {
            return { error: 'malformed token' };
        }
        if (head.alg !== 'HS256') return { error: 'wrong algorithm' };
        const want = crypto.createHmac('sha256', secret).update(`${parts[0]}.${parts[1]}`).digest();
        const got = Buffer.from(parts[2], 'base64url');
        if (got.length !== want.length || !crypto.timingSafeEqual(got, want)) return { error: 'bad signature' };
        if (typeof claims.exp !== 'number' || claims.exp < Date.now() / 1000 - 30) return { error: 'token expired' };
        if (typeof claims.sub !== 'string' || !USER_RE.test(claims.sub)) return { error: 'bad sub' };
        if (revoked.has(m[1])) return { error: 'token revoked' };
        return { user: claims.sub, admin: claims.role === 'admin', raw: m[1] };
    }

    function stateOf(u) {
        let best = 'offline';
        for (const s of u.sessions.values()) {
            if (s.state === 'online') return 'online';
            best = 'away';
        }
        return best;
    }
    const view = (u) => ({ user: u.user, state: stateOf(u), last_seen: u.last_seen, sessions: u.sessions.size, account: u.account });
    const devices = (u) => [...u.sessions].map(([session, s]) => ({
        session, device: s.device || '', since: s.since || u.last_seen, last_seen: s.last || u.last_seen, state: s.state,
    }));

    function getUser(name, create) {
        let u = users.get(name);
        if (!u && create) {
            u = { user: name, last_seen: 0, account: 'active', sessions: new Map(), audit: [] };
            users.set(name, u);
        }
        return u;
    }

    // Run fn(u) and publish a change if the user's state or account moved
    // (or always, for account changes, as the broker does).
    function mutate(u, reason, fn, always = false) {
        const prev = stateOf(u);
        const prevAccount = u.account;
        fn(u);
        const state = stateOf(u);
        counters.applied++;
        if (!always && prev === state && prevAccount === u.account) return;
        seq++;
        const ch = { v: 1, seq, user: u.user, state, prev, at: Date.now(), reason, sessions: u.sessions.size, account: u.account };
        changes.push(ch);
        if (changes.length > RING) changes.shift();
        for (const s of streams) writeChange(s, ch);
    }

    function writeChange(res, ch) {
        res.write(`id: ${ch.seq}\ndata: ${JSON.stringify(ch)}\n\n`);
    }

    function seed(n) {
        const names = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy', 'mallory', 'niaj', 'olivia', 'peggy', 'rupert', 'sybil', 'trent', 'victor', 'walter'];
        const now = Date.now();
        for (let i = 0; i < n; i++) {
            const name = `${names[i % names.length]}${i < names.length ? '' : '.' + Math.floor(i / names.length)}@example.org`;
            const u = getUser(name, true);
            u.last_seen = now - Math.floor((i * 7919) % 86400) * 1000;
            u.account = i % 17 === 5 ? 'suspended' : i % 23 === 7 ? 'banned' : i % 13 === 4 ? 'pending' : 'active';
            if (u.account === 'active' && i % 3 !== 2) {
                const n2 = 1 + (i % 4 === 0 ? 1 : 0);
                for (let k = 0; k < n2; k++) u.sessions.set(crypto.randomUUID(), { deadline: now + timeoutMs, state: i % 5 === 1 ? 'away' : 'online' });
                u.last_seen = now - (i % 60) * 1000;
            }
        }
    }

    function stats() {
        const s = { seq, users: { online: 0, away: 0, offline: 0 }, accounts: {}, sessions: 0, events: { ...counters } };
        for (const a of ACCOUNTS) s.accounts[a] = 0;
        for (const u of users.values()) {
            s.users[stateOf(u)]++;
            s.accounts[u.account]++;
            s.sessions += u.sessions.size;
        }
        return s;
    }

    function send(res, code, obj) {
        if (obj === undefined) {
            res.writeHead(code, { 'Cache-Control': 'no-store' });
            return res.end();
        }
        const body = JSON.stringify(obj);
        res.writeHead(code, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
        res.end(body);
    }
    const fail = (res, code, msg) => send(res, code, { error: msg });

    function readJson(req) {
        return new Promise((resolve) => {
            let size = 0;
            const chunks = [];
            req.on('data', (c) => {
                size += c.length;
                if (size <= 4096) chunks.push(c);
            });
            req.on('end', () => {
                if (size > 4096) return resolve({ tooLarge: true });
                if (size === 0) return resolve({ body: {} });
                try {
                    const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
                    resolve(body && typeof body === 'object' && !Array.isArray(body) ? { body } : { bad: true });
                } catch {
                    resolve({ bad: true });
                }
            });
        });
    }

    function serveStatic(res, file) {
        const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };
        fs.readFile(path.join(WEB_DIR, file), (err, data) => {
            if (err) return fail(res, 404, 'not found');
            res.writeHead(200, { 'Content-Type': types[path.extname(file)] || 'application/octet-stream', 'Cache-Control': 'no-cache' });
            res.end(data);
        });
    }

    async function handle(req, res) {
        const url = new URL(req.url, 'http://x');
        const p = url.pathname;
        if (req.method === 'GET' && (p === '/' || p === '/index.html')) return serveStatic(res, 'index.html');
        if (req.method === 'GET' && (p === '/app.js' || p === '/app.css')) return serveStatic(res, p.slice(1));
        if (p === '/healthz') return send(res, 200, { ok: true, broker: true });
        if (!p.startsWith('/v1/')) return fail(res, 404, 'not found');

        const auth = verify(req);
        if (auth.error) return fail(res, 401, auth.error);
        const admin = () => {
            if (!auth.admin) fail(res, 403, 'admin role required');
            return auth.admin;
        };

        if (p === '/v1/login' && req.method === 'POST') {
            const r = await readJson(req);
            if (r.tooLarge) return fail(res, 413, 'body too large');
            if (r.bad) return fail(res, 400, 'invalid JSON');
            const u = getUser(auth.user, true);
            if (u.account !== 'active') {
                counters.refused++;
                return fail(res, 403, `account ${u.account}`);
            }
            const session = crypto.randomUUID();
            mutate(u, 'login', () => {
                const now = Date.now();
                u.sessions.set(session, { deadline: now + timeoutMs, state: 'online', since: now, last: now,
                    device: typeof r.body.device === 'string' ? r.body.device : '' });
                u.last_seen = Date.now();
            });
            return send(res, 200, { user: u.user, session, heartbeat_s: heartbeatS, timeout_s: timeoutMs / 1000 });
        }
        if (p === '/v1/heartbeat' && req.method === 'POST') {
            const r = await readJson(req);
            if (r.tooLarge) return fail(res, 413, 'body too large');
            if (r.bad || typeof r.body.session !== 'string') return fail(res, 400, 'session required');
            const st = r.body.state ?? 'online';
            if (st !== 'online' && st !== 'away') return fail(res, 400, 'state must be online or away');
            const u = getUser(auth.user, true);
            if (u.account !== 'active') {
                counters.refused++;
                return fail(res, 403, `account ${u.account}`);
            }
            mutate(u, 'heartbeat', () => {
                const old = u.sessions.get(r.body.session) || { since: Date.now(), device: '' };
                u.sessions.set(r.body.session, { ...old, deadline: Date.now() + timeoutMs, state: st, last: Date.now() });
                u.last_seen = Date.now();
            });
            return send(res, 204);
        }
        if (p === '/v1/logout' && req.method === 'POST') {
            const r = await readJson(req);
            if (r.tooLarge) return fail(res, 413, 'body too large');
            if (r.bad) return fail(res, 400, 'invalid JSON');
            const u = getUser(auth.user, true);
            mutate(u, 'logout', () => {
                if (typeof r.body.session === 'string') u.sessions.delete(r.body.session);
                else u.sessions.clear();
                u.last_seen = Date.now();
            });
            revoked.add(auth.raw);
            return send(res, 204);
        }
        if (p === '/v1/stats') {
            if (req.method !== 'GET') return fail(res, 405, 'method not allowed');
            if (!admin()) return;
            return send(res, 200, stats());
        }
        if (p === '/v1/events') {
            if (req.method !== 'GET') return fail(res, 405, 'method not allowed');
            if (!admin()) return;
            res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
            res.write('retry: 1000\n: presence mock\n\n');
            const last = req.headers['last-event-id'];
            if (last !== undefined) {
                const n = Number(last);
                const oldest = changes.length ? changes[0].seq : seq + 1;
                if (!Number.isInteger(n) || n > seq || (n < seq && n + 1 < oldest)) {
                    res.write(`id: ${seq}\nevent: resync\ndata: ${JSON.stringify({ seq })}\n\n`);
                } else {
                    for (const ch of changes) if (ch.seq > n) writeChange(res, ch);
                }
            }
            streams.add(res);
            const ping = setInterval(() => res.write(':keepalive\n\n'), 15000);
            req.on('close', () => {
                clearInterval(ping);
                streams.delete(res);
            });
            return;
        }
        if (p === '/v1/users') {
            if (req.method !== 'GET') return fail(res, 405, 'method not allowed');
            if (!admin()) return;
            const state = url.searchParams.get('state');
            if (state && !STATES.includes(state)) return fail(res, 400, 'bad state');
            const limit = Math.min(Math.max(Number(url.searchParams.get('limit') || 50) | 0, 1), 1000);
            const cursor = url.searchParams.get('cursor');
            let after = '';
            if (cursor) {
                try {
                    after = Buffer.from(cursor, 'base64url').toString('utf8');
                } catch {
                    return fail(res, 400, 'bad cursor');
                }
            }
            const names = [...users.keys()].sort().filter((n) => n > after);
            const out = [];
            let next;
            for (const n of names) {
                const u = users.get(n);
                if (state && stateOf(u) !== state) continue;
                if (out.length === limit) {
                    next = b64url(out[out.length - 1].user);
                    break;
                }
                out.push(view(u));
            }
            return send(res, 200, next ? { users: out, next } : { users: out });
        }
        let m = /^\/v1\/users\/([^/]+)\/account$/.exec(p);
        if (m) {
            if (req.method !== 'PUT') return fail(res, 405, 'method not allowed');
            if (!admin()) return;
            const name = decodeURIComponent(m[1]);
            if (!USER_RE.test(name)) return fail(res, 400, 'bad user');
            const r = await readJson(req);
            if (r.tooLarge) return fail(res, 413, 'body too large');
            if (r.bad || !ACCOUNTS.includes(r.body.status)) return fail(res, 400, 'status must be one of ' + ACCOUNTS.join(', '));
            const u = getUser(name, true);
            const apply = () => mutate(u, r.body.status === 'active' ? 'account' : r.body.status, () => {
                u.audit.unshift({ at: Date.now(), by: auth.user, old: u.account, new: r.body.status, reason: r.body.reason || '' });
                u.account = r.body.status;
                if (u.account !== 'active') u.sessions.clear();
            }, true);
            // A test can hold the change back to see the page's pending marker.
            if (held) held.push(apply);
            else setTimeout(apply, opts.accountDelayMs ?? 0);
            return send(res, 200, { user: name, account: r.body.status });
        }
        m = /^\/v1\/users\/([^/]+)\/audit$/.exec(p);
        if (m) {
            if (req.method !== 'GET') return fail(res, 405, 'method not allowed');
            if (!admin()) return;
            const u = users.get(decodeURIComponent(m[1]));
            return send(res, 200, { entries: u ? u.audit : [] });
        }
        if (p === '/v1/stats/series') {
            if (req.method !== 'GET') return fail(res, 405, 'method not allowed');
            if (!admin()) return;
            const minutes = Number(url.searchParams.get('minutes') || 60);
            if (!Number.isInteger(minutes) || minutes < 1 || minutes > 43200) return fail(res, 400, 'minutes must be 1 to 43200');
            // Like the broker: one point a minute (here a made-up past of
            // 90 minutes), the current minute from the live counters.
            const now = Date.now();
            const cur = now - (now % 60000);
            const st = stats();
            const points = [];
            for (let i = Math.min(minutes, 90) - 1; i >= 1; i--) points.push({ at: cur - i * 60000, online: (i % 5) + 1, away: i % 2 });
            points.push({ at: cur, online: st.users.online, away: st.users.away });
            return send(res, 200, { points });
        }
        m = /^\/v1\/users\/([^/]+)$/.exec(p);
        if (m) {
            if (req.method !== 'GET') return fail(res, 405, 'method not allowed');
            const name = decodeURIComponent(m[1]);
            if (!USER_RE.test(name)) return fail(res, 400, 'bad user');
            const u = users.get(name);
            if (!u) return fail(res, 404, 'no such user');
            return send(res, 200, { ...view(u), devices: devices(u) });
        }
        return fail(res, 404, 'not found');
    }

    // The sweeper: end sessions past their deadline.
    const sweep = setInterval(() => {
        const now = Date.now();
        for (const u of users.values()) {
            const dead = [...u.sessions].filter(([, s]) => s.deadline <= now).map(([id]) => id);
            if (dead.length) mutate(u, 'timeout', () => dead.forEach((id) => u.sessions.delete(id)));
        }
    }, 200);

    if (opts.seed) seed(opts.seed);

    const server = http.createServer((req, res) => {
        handle(req, res).catch((e) => {
            console.error('mock-gateway:', e);
            if (!res.headersSent) fail(res, 500, 'internal error');
        });
    });
    return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
            const { address, port } = server.address();
            resolve({
                url: `http://${address}:${port}`,
                mintToken,
                stats,
                // Cut every open event stream (the page must reconnect and resume).
                dropEventStreams() {
                    for (const s of streams) s.destroy();
                    streams.clear();
                },
                // Queue account changes (PUT answers at once, the change waits).
                holdAccountChanges() {
                    held = held || [];
                },
                releaseAccountChanges() {
                    const q = held || [];
                    held = null;
                    q.forEach((f) => f());
                },
                sendResync() {
                    for (const s of streams) s.write(`id: ${seq}\nevent: resync\ndata: ${JSON.stringify({ seq })}\n\n`);
                },
                close() {
                    clearInterval(sweep);
                    for (const s of streams) s.destroy();
                    server.closeAllConnections?.();
                    return new Promise((r) => server.close(() => r()));
                },
            });
        });
    });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
    const arg = (name, dflt) => {
        const i = process.argv.indexOf(name);
        return i > 0 ? process.argv[i + 1] : dflt;
    };
    const listen = process.env.PRESENCE_HTTP_LISTEN || '';
    const port = Number(arg('--port', listen.split(':')[1] || 8080));
    const gw = await startMockGateway({
        port,
        seed: Number(arg('--seed', 0)),
        timeoutS: Number(process.env.PRESENCE_TIMEOUT || 120),
    });
    console.log(`mock gateway on ${gw.url}`);
    console.log(`admin token: ${gw.mintToken('admin', { admin: true, ttlS: 86400 })}`);
    console.log(`user token (alice@example.org): ${gw.mintToken('alice@example.org', { ttlS: 86400 })}`);
    const stop = async () => {
        await gw.close();
        process.exit(0);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
}
