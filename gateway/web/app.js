// presence admin dashboard: stats, a paged user table, live updates from
// GET /v1/events (SSE read through fetch() so the Bearer token can be sent),
// an online-users chart (the broker's per-minute series, the same for every
// admin), per-user devices and audit, and account actions. No framework, no
// build step.
'use strict';

(function () {
    const TOKEN_KEY = 'presence.adminToken';
    const SERIES_EVERY_MS = 60000;      // re-read /v1/stats/series (one point a minute)
    const PAGE_SIZE = 50;
    const STATS_MIN_INTERVAL_MS = 1000; // re-fetch /v1/stats at most once a second after events
    const SAMPLE_EVERY_MS = 10000;      // chart sampling period
    const HOUR_MS = 3600 * 1000;
    const DAY_MS = 24 * HOUR_MS;
    const BACKOFF_MIN_MS = 500;
    const BACKOFF_MAX_MS = 5000;
    const PENDING_RECONCILE_MS = 8000;  // no event after a PUT: re-read the user from the API
    const MAX_LIVE_ROWS = 100;          // rows inserted from events on top of a page
    const PAGE_REFRESH_MS = 60000;      // quiet re-read of the current page (last_seen drift)

    const $ = (id) => document.getElementById(id);
    const el = (tag, props, ...kids) => {
        const n = document.createElement(tag);
        if (props) {
            for (const [k, v] of Object.entries(props)) {
                if (v === undefined || v === null || v === false) continue;
                if (k === 'class') n.className = v;
                else if (k === 'text') n.textContent = v;
                else if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
                else n.setAttribute(k, v === true ? '' : String(v));
            }
        }
        for (const k of kids) if (k !== null && k !== undefined) n.append(k);
        return n;
    };

    // ---- state ----------------------------------------------------------
    const S = {
        token: sessionStorage.getItem(TOKEN_KEY) || '',
        stats: null,
        statsTimer: null,
        statsLastFetch: 0,
        statsInFlight: false,
        mode: 'list',          // 'list' | 'search'
        searchUser: '',
        stateFilter: '',
        accountFilter: '',
        cursor: null,          // cursor of the current page (null = first)
        cursorStack: [],       // cursors of the previous pages
        next: null,
        rows: new Map(),       // user -> row model
        order: [],             // users in display order
        liveRows: new Set(),   // users inserted from events (not from the page)
        pending: new Map(),    // user -> {status, timer}
        lastSeq: null,         // last change seq applied from the stream
        stream: null,          // AbortController of the event stream
        backoff: BACKOFF_MIN_MS,
        reconnectTimer: null,
        authFailed: false,
        range: 'hour',
        samples: [],           // [t, online, away]: the series, then live stats samples
        pageLoad: 0,           // generation counter to drop stale page loads
        pageStale: false,      // the last page load failed
        everConnected: false,  // the event stream was up at least once
    };

    // ---- small helpers ----------------------------------------------------
    function announce(msg) {
        const s = $('status');
        // Clearing first makes screen readers repeat identical messages.
        s.textContent = '';
        window.setTimeout(() => { s.textContent = msg; }, 30);
    }

    function showError(msg) {
        $('error-text').textContent = msg;
        $('error').hidden = false;
    }

    function clearError() {
        $('error').hidden = true;
        $('error-text').textContent = '';
    }

    function fmtNum(n) {
        return typeof n === 'number' ? n.toLocaleString() : '–';
    }

    function relTime(ms, now) {
        if (!ms) return 'never';
        const d = Math.max(0, (now || Date.now()) - ms);
        const s = Math.round(d / 1000);
        if (s < 5) return 'just now';
        if (s < 60) return `${s} s ago`;
        const m = Math.floor(s / 60);
        if (m < 60) return `${m} min ago`;
        const h = Math.floor(m / 60);
        if (h < 48) return `${h} h ago`;
        return `${Math.floor(h / 24)} d ago`;
    }

    function exactTime(ms) {
        if (!ms) return 'never seen';
        const d = new Date(ms);
        const p = (x, n = 2) => String(x).padStart(n, '0');
        const off = -d.getTimezoneOffset();
        const tz = `${off >= 0 ? '+' : '-'}${p(Math.floor(Math.abs(off) / 60))}:${p(Math.abs(off) % 60)}`;
        return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)} ${tz}`;
    }

    // ---- API --------------------------------------------------------------
    class ApiError extends Error {
        constructor(status, message) {
            super(message);
            this.status = status;
        }
    }

    async function api(method, path, body) {
        const headers = { Authorization: `Bearer ${S.token}`, Accept: 'application/json' };
        const init = { method, headers, cache: 'no-store' };
        if (body !== undefined) {
            headers['Content-Type'] = 'application/json';
            init.body = JSON.stringify(body);
        }
        let res;
        try {
            res = await fetch(path, init);
        } catch (e) {
            throw new ApiError(0, `Network error: cannot reach the gateway (${e.message || e})`);
        }
        if (res.status === 204) return null;
        let data = null;
        const text = await res.text().catch(() => '');
        if (text) {
            try { data = JSON.parse(text); } catch { data = null; }
        }
        if (!res.ok) {
            const reason = data && typeof data.error === 'string' ? data.error : res.statusText || 'error';
            throw new ApiError(res.status, reason);
        }
        return data;
    }

    // Handles the errors every call shares. Returns true when it was handled.
    function handleApiError(e, what) {
        if (!(e instanceof ApiError)) {
            showError(`${what}: ${e.message || e}`);
            return true;
        }
        if (e.status === 401) {
            authProblem(`The token was refused (${e.message}). Enter an admin token.`);
            return true;
        }
        if (e.status === 403) {
            authProblem(`Admin role required: this token is not an admin token (${e.message}).`);
            return true;
        }
        if (e.status === 0) {
            showError(`${what}: ${e.message}`);
            return true;
        }
        showError(`${what}: ${e.message} (HTTP ${e.status})`);
        return true;
    }

    function authProblem(msg) {
        S.authFailed = true;
        stopStream();
        setConn('error', msg.startsWith('Admin') ? 'admin role required' : 'token refused');
        showError(msg);
        openTokenDialog(msg);
    }

    // ---- token dialog ------------------------------------------------------
    function openTokenDialog(msg) {
        const d = $('token-dialog');
        $('token-error').textContent = msg || '';
        $('token-input').value = '';
        $('token-cancel').hidden = !S.token || S.authFailed;
        if (!d.open) d.showModal();
        $('token-input').focus();
    }

    function setToken(tok) {
        S.token = tok;
        S.authFailed = false;
        sessionStorage.setItem(TOKEN_KEY, tok);
        clearError();
        start();
    }

    // ---- connection status --------------------------------------------------
    function setConn(state, text) {
        const c = $('conn');
        c.className = `conn conn-${state}`;
        c.dataset.state = state;
        $('conn-text').textContent = text;
    }

    // ---- stats --------------------------------------------------------------
    async function fetchStats() {
        if (!S.token || S.authFailed) return;
        if (S.statsInFlight) {
            scheduleStats();
            return;
        }
        S.statsInFlight = true;
        S.statsLastFetch = Date.now();
        try {
            const st = await api('GET', '/v1/stats');
            S.stats = st;
            renderStats();
            addSample(st);
        } catch (e) {
            handleApiError(e, 'Loading stats failed');
        } finally {
            S.statsInFlight = false;
        }
    }

    // At most one /v1/stats fetch per STATS_MIN_INTERVAL_MS after events.
    function scheduleStats() {
        if (S.statsTimer) return;
        const wait = Math.max(0, S.statsLastFetch + STATS_MIN_INTERVAL_MS - Date.now());
        S.statsTimer = window.setTimeout(() => {
            S.statsTimer = null;
            fetchStats();
        }, wait);
    }

    function renderStats() {
        const st = S.stats;
        if (!st) return;
        const u = st.users || {};
        const a = st.accounts || {};
        $('stat-online').textContent = fmtNum(u.online);
        $('stat-away').textContent = fmtNum(u.away);
        $('stat-offline').textContent = fmtNum(u.offline);
        $('stat-sessions').textContent = fmtNum(st.sessions);
        for (const k of ['active', 'pending', 'inactive', 'suspended', 'banned']) $(`stat-${k}`).textContent = fmtNum(a[k]);
        const ev = st.events;
        $('stat-events').textContent = ev
            ? `Events: ${fmtNum(ev.applied)} applied, ${fmtNum(ev.refused)} refused, ${fmtNum(ev.lost)} lost · seq ${fmtNum(st.seq)}`
            : '';
    }

    // ---- chart --------------------------------------------------------------
    // The broker keeps one point a minute for 30 days (GET /v1/stats/series),
    // so every admin sees the same chart from the first visit. Between two
    // reads, /v1/stats samples extend the line in memory.
    async function fetchSeries() {
        if (!S.token || S.authFailed) return;
        try {
            const r = await api('GET', '/v1/stats/series?minutes=1440');
            const pts = Array.isArray(r && r.points) ? r.points : [];
            const series = pts
                .filter((p) => p && typeof p.at === 'number')
                .map((p) => [p.at, p.online | 0, p.away | 0]);
            // Live samples newer than the last stored minute stay.
            const lastAt = series.length ? series[series.length - 1][0] : 0;
            S.samples = series.concat(S.samples.filter((s) => s[0] > lastAt + 60000));
            renderChart();
        } catch (e) {
            handleApiError(e, 'Loading the chart failed');
        }
    }

    // Samples are [t, online, away]: the series (one a minute), then live
    // samples from /v1/stats (every one of the last hour), a day at most.
    function addSample(st) {
        if (!st || !st.users) return;
        const now = Date.now();
        const last = S.samples[S.samples.length - 1];
        const sample = [now, st.users.online | 0, st.users.away | 0];
        if (last && now - last[0] < 1000) S.samples[S.samples.length - 1] = sample;
        else S.samples.push(sample);
        const out = [];
        let lastMinute = -1;
        for (const s of S.samples) {
            if (s[0] < now - DAY_MS) continue;
            if (s[0] < now - HOUR_MS) {
                const m = Math.floor(s[0] / 60000);
                if (m === lastMinute) continue;
                lastMinute = m;
            }
            out.push(s);
        }
        S.samples = out;
        renderChart();
    }

    function renderChart() {
        const NS = 'http://www.w3.org/2000/svg';
        const box = $('chart');
        const now = Date.now();
        const hasDay = S.samples.length > 0 && S.samples[0][0] < now - HOUR_MS;
        $('range-day').disabled = !hasDay;
        if (!hasDay && S.range === 'day') S.range = 'hour';
        $('range-hour').setAttribute('aria-pressed', String(S.range === 'hour'));
        $('range-day').setAttribute('aria-pressed', String(S.range === 'day'));
        const span = S.range === 'day' ? DAY_MS : HOUR_MS;
        const t0 = now - span;
        const raw = S.samples.filter((s) => s[0] >= t0);

        // Drawn at the box's pixel size so text is never stretched.
        const W = Math.max(200, Math.round(box.clientWidth || 600)), H = 150, L = 34, R = 8, T = 8, B = 20;
        const svg = document.createElementNS(NS, 'svg');
        svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
        svg.setAttribute('width', String(W));
        svg.setAttribute('height', String(H));
        svg.setAttribute('aria-hidden', 'true');
        const mk = (tag, attrs, text) => {
            const n = document.createElementNS(NS, tag);
            for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
            if (text !== undefined) n.textContent = text;
            svg.append(n);
            return n;
        };
        // At most one point per 2 px: average the samples of each bucket.
        const bucketMs = span / ((W - L - R) / 2);
        const pts = raw.length > (W - L - R) / 2 ? bucketize(raw, t0, bucketMs) : raw;
        const niceMax = niceCeil(Math.max(2, ...pts.map((s) => Math.max(s[1], s[2] || 0))));
        const x = (t) => L + ((t - t0) / span) * (W - L - R);
        const y = (v) => T + (1 - v / niceMax) * (H - T - B);
        for (let i = 0; i <= 2; i++) {
            const v = (niceMax * i) / 2;
            mk('line', { class: 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v) });
            mk('text', { class: 'axis-label', x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmtNum(Math.round(v)));
        }
        const narrow = W < 480;
        const ticks = S.range === 'day'
            ? (narrow ? [24, 12, 0] : [24, 18, 12, 6, 0]).map((h) => [now - h * HOUR_MS, h ? `-${h} h` : 'now'])
            : (narrow ? [60, 30, 0] : [60, 45, 30, 15, 0]).map((m) => [now - m * 60000, m ? `-${m} min` : 'now']);
        ticks.forEach(([t, label], i) => {
            mk('text', { class: 'axis-label', x: x(t), y: H - 4, 'text-anchor': i === 0 ? 'start' : i === ticks.length - 1 ? 'end' : 'middle' }, label);
        });
        if (pts.length === 0) {
            mk('text', { class: 'nodata', x: (L + W) / 2, y: H / 2, 'text-anchor': 'middle' }, 'Collecting samples…');
        } else {
            // Break the line where sampling stopped (tab closed, network down).
            const gap = Math.max(S.range === 'day' ? 3 * 60000 : 150000, bucketMs * 2.5);
            const path = (idx) => {
                let d = '';
                let prev = null;
                for (const s of pts) {
                    const cmd = prev && s[0] - prev[0] <= gap ? 'L' : 'M';
                    d += `${cmd}${x(s[0]).toFixed(1)},${y(s[idx] || 0).toFixed(1)}`;
                    prev = s;
                }
                return d;
            };
            mk('path', { class: 'line-away', d: path(2) });
            mk('path', { class: 'line-online', d: path(1) });
            const lastPt = raw[raw.length - 1];
            mk('circle', { cx: x(lastPt[0]), cy: y(lastPt[1]), r: 3, fill: 'var(--online)' });
        }
        box.replaceChildren(svg);
        const cur = raw.length ? raw[raw.length - 1] : null;
        const peak = raw.length ? Math.max(...raw.map((s) => s[1])) : 0;
        const sum = $('chart-summary');
        sum.replaceChildren(
            el('span', { class: 'legend-swatch', 'aria-hidden': 'true' }), `online ${cur ? fmtNum(cur[1]) : '–'}`, '  ',
            el('span', { class: 'legend-swatch away', 'aria-hidden': 'true' }), `away ${cur ? fmtNum(cur[2]) : '–'}`,
            ` · peak ${fmtNum(peak)} in the last ${S.range === 'day' ? 'day' : 'hour'}`,
        );
    }

    // The smallest "round" even number >= v, so that max/2 is an integer too.
    function niceCeil(v) {
        const p = Math.pow(10, Math.floor(Math.log10(Math.max(2, v))));
        for (const m of [1, 2, 4, 6, 8, 10]) if (m * p >= v && (m * p) % 2 === 0) return m * p;
        return 10 * p;
    }

    function bucketize(samples, t0, bucketMs) {
        const out = [];
        let key = null, n = 0, st = 0, so = 0, sa = 0;
        const flush = () => { if (n) out.push([st / n, so / n, sa / n]); };
        for (const s of samples) {
            const k = Math.floor((s[0] - t0) / bucketMs);
            if (k !== key) {
                flush();
                key = k; n = 0; st = 0; so = 0; sa = 0;
            }
            n++; st += s[0]; so += s[1]; sa += s[2] || 0;
        }
        flush();
        return out;
    }

    // ---- user table -----------------------------------------------------------
    function modelFrom(u) {
        return {
            user: u.user,
            state: u.state || 'offline',
            last_seen: typeof u.last_seen === 'number' ? u.last_seen : 0,
            sessions: typeof u.sessions === 'number' ? u.sessions : 0,
            account: u.account || 'active',
            seq: 0,
            stale: false,
            flash: false,
        };
    }

    // Load the current page. With merge = true (the periodic refresh) rows
    // inserted from events stay on top and rows changed by an event during
    // the request keep the event's newer data.
    async function loadPage(merge) {
        if (!S.token || S.authFailed) return;
        const gen = ++S.pageLoad;
        const seqAtRequest = S.lastSeq;
        if (!merge) $('users-body').setAttribute('aria-busy', 'true');
        try {
            let users, next = null;
            if (S.mode === 'search') {
                try {
                    const u = await api('GET', `/v1/users/${encodeURIComponent(S.searchUser)}`);
                    users = [u];
                } catch (e) {
                    if (e instanceof ApiError && e.status === 404) users = [];
                    else throw e;
                }
            } else {
                const q = new URLSearchParams();
                if (S.stateFilter) q.set('state', S.stateFilter);
                q.set('limit', String(PAGE_SIZE));
                if (S.cursor) q.set('cursor', S.cursor);
                const page = await api('GET', `/v1/users?${q}`);
                users = Array.isArray(page && page.users) ? page.users : [];
                next = page && page.next ? page.next : null;
            }
            if (gen !== S.pageLoad) return; // a newer load won
            const old = S.rows;
            const live = merge ? S.order.filter((u) => S.liveRows.has(u)) : [];
            S.rows = new Map();
            S.order = [];
            const page = [];
            for (const u of users) {
                if (!u || typeof u.user !== 'string' || S.rows.has(u.user)) continue;
                const prev = old.get(u.user);
                let r = modelFrom(u);
                if (merge && prev) {
                    // An event newer than this answer wins over it.
                    if (seqAtRequest !== null && prev.seq > seqAtRequest) r = prev;
                    else r.last_seen = Math.max(r.last_seen, prev.last_seen);
                    r.stale = false;
                }
                S.rows.set(u.user, r);
                page.push(u.user);
            }
            const keepLive = live.filter((u) => !S.rows.has(u));
            for (const u of keepLive) S.rows.set(u, old.get(u));
            S.liveRows = new Set(keepLive);
            S.order = keepLive.concat(page);
            S.next = next;
            S.pageStale = false;
            renderTable();
        } catch (e) {
            if (gen === S.pageLoad) {
                S.pageStale = true; // reloaded when the stream (re)connects
                handleApiError(e, 'Loading users failed');
            }
        } finally {
            if (gen === S.pageLoad) $('users-body').removeAttribute('aria-busy');
        }
    }

    // last_seen of online users moves with every heartbeat, which publishes
    // no change, so re-read the page now and then (only while someone looks).
    function refreshPageQuietly() {
        if (document.visibilityState !== 'visible') return;
        if ($('action-dialog').open || $('token-dialog').open || S.pending.size) return;
        loadPage(true);
    }

    function visible(r) {
        return !S.accountFilter || r.account === S.accountFilter;
    }

    function actionsFor(r) {
        const acts = [];
        if (r.account !== 'suspended' && r.account !== 'banned') acts.push(['suspend', 'Suspend']);
        if (r.account !== 'banned') acts.push(['ban', 'Ban']);
        if (r.account !== 'active') acts.push(['reactivate', 'Reactivate']);
        return acts;
    }

    function renderRow(r) {
        const now = Date.now();
        const pend = S.pending.get(r.user);
        const tr = el('tr', {
            'data-testid': 'row',
            'data-user': r.user,
            'data-state': r.state,
            'data-account': r.account,
            class: [r.stale ? 'stale' : '', r.flash ? 'flash' : ''].filter(Boolean).join(' ') || null,
            title: r.stale ? `No longer ${S.stateFilter}: kept until the page is reloaded` : null,
        });
        tr.append(
            el('td', { class: 'user', title: r.user, 'data-testid': 'cell-user' }, r.user,
                S.liveRows.has(r.user) ? el('span', { class: 'live-tag', text: 'live' }) : null),
            el('td', { 'data-testid': 'cell-state' },
                el('span', { class: `state state-${r.state}` }, el('span', { class: `dot dot-${r.state}`, 'aria-hidden': 'true' }), r.state)),
            el('td', { 'data-testid': 'cell-last-seen' },
                el('time', {
                    class: 'rel',
                    'data-ms': r.last_seen,
                    datetime: r.last_seen ? new Date(r.last_seen).toISOString() : null,
                    title: exactTime(r.last_seen),
                    text: relTime(r.last_seen, now),
                })),
            el('td', { class: 'num', 'data-testid': 'cell-sessions', text: String(r.sessions) }),
            el('td', { 'data-testid': 'cell-account' },
                el('span', { class: `acct acct-${r.account}`, text: r.account }),
                pend ? el('span', { class: 'pending', 'data-testid': 'pending', text: `${pend.status}…`, title: `Waiting for the ${pend.status} change to arrive` }) : null),
        );
        const td = el('td', { class: 'actions' });
        td.append(el('button', {
            type: 'button',
            class: 'btn btn-row btn-ghost',
            'data-testid': 'action-details',
            'data-details': r.user,
            'aria-label': `Devices and audit of ${r.user}`,
            text: 'Details',
        }));
        for (const [act, label] of actionsFor(r)) {
            td.append(el('button', {
                type: 'button',
                class: `btn btn-row act-${act}`,
                'data-testid': `action-${act}`,
                'data-action': act,
                'data-user': r.user,
                'aria-label': `${label} ${r.user}`,
                'aria-disabled': pend ? 'true' : null,
                title: pend ? 'A change is pending for this user' : null,
                text: label,
            }));
        }
        tr.append(td);
        return tr;
    }

    function renderTable() {
        const body = $('users-body');
        // Keep keyboard focus on the same control across re-renders.
        const f = document.activeElement;
        const focusKey = f && f.dataset && f.dataset.user && f.dataset.action ? [f.dataset.user, f.dataset.action] : null;
        const rows = [];
        let hidden = 0;
        for (const u of S.order) {
            const r = S.rows.get(u);
            if (!r) continue;
            if (!visible(r)) {
                hidden++;
                continue;
            }
            rows.push(renderRow(r));
            r.flash = false;
        }
        body.replaceChildren(...rows);
        if (focusKey) {
            const again = body.querySelector(`button[data-user="${CSS.escape(focusKey[0])}"][data-action="${focusKey[1]}"]`)
                || body.querySelector(`button[data-user="${CSS.escape(focusKey[0])}"]`);
            if (again) again.focus();
        }
        const empty = $('table-empty');
        if (rows.length === 0) {
            empty.hidden = false;
            if (!S.token || S.authFailed) empty.textContent = 'Waiting for an admin token.';
            else if (S.mode === 'search') empty.textContent = `No user “${S.searchUser}”.`;
            else if (hidden) empty.textContent = `No ${S.accountFilter} accounts on this page (${hidden} hidden by the account filter).`;
            else empty.textContent = S.stateFilter ? `No ${S.stateFilter} users.` : 'No users yet.';
        } else {
            empty.hidden = true;
        }
        // pager
        const pageNo = S.cursorStack.length + 1;
        $('page-prev').disabled = S.mode !== 'list' || S.cursorStack.length === 0;
        $('page-next').disabled = S.mode !== 'list' || !S.next;
        $('search-clear').hidden = S.mode !== 'search';
        let info;
        if (S.mode === 'search') info = 'Exact match';
        else {
            info = `Page ${pageNo} · ${rows.length} shown`;
            if (hidden) info += ` · ${hidden} hidden by the account filter`;
        }
        $('page-info').textContent = info;
    }

    // Coalesce bursts of changes into one re-render.
    let renderTimer = null;
    function scheduleRender() {
        if (renderTimer) return;
        renderTimer = window.setTimeout(() => {
            renderTimer = null;
            renderTable();
        }, 30);
    }

    function refreshRelativeTimes() {
        const now = Date.now();
        for (const t of document.querySelectorAll('time.rel')) t.textContent = relTime(Number(t.dataset.ms), now);
    }

    // ---- live changes -----------------------------------------------------------
    function applyChange(ch) {
        if (!ch || typeof ch.user !== 'string' || typeof ch.state !== 'string') return;
        const seq = typeof ch.seq === 'number' ? ch.seq : null;
        if (seq !== null && S.lastSeq !== null) {
            if (seq <= S.lastSeq) return; // replayed after a reconnect: already applied
            if (seq > S.lastSeq + 1) {
                // A gap the gateway did not report: reload rather than drift.
                S.lastSeq = seq;
                resync('gap in change sequence');
                return;
            }
        }
        if (seq !== null) S.lastSeq = seq;

        // Keep the counters moving at once; /v1/stats reconciles within a second.
        if (S.stats && S.stats.users && ch.prev && ch.prev !== ch.state
            && typeof S.stats.users[ch.prev] === 'number' && typeof S.stats.users[ch.state] === 'number') {
            S.stats.users[ch.prev] = Math.max(0, S.stats.users[ch.prev] - 1);
            S.stats.users[ch.state]++;
            renderStats();
        }
        scheduleStats();

        const pend = S.pending.get(ch.user);
        if (pend && ch.account === pend.status) {
            window.clearTimeout(pend.timer);
            S.pending.delete(ch.user);
            announce(`${ch.user} is now ${ch.account}.`);
        }

        let r = S.rows.get(ch.user);
        if (r) {
            updateModel(r, ch);
            if (S.mode === 'list' && S.stateFilter) r.stale = r.state !== S.stateFilter;
            scheduleRender();
            return;
        }
        // Not on this page: show it on top if it matches the state filter
        // (a user who logs in appears at once on the "all"/"online" views).
        if (S.mode !== 'list') return;
        if (S.stateFilter && S.stateFilter !== ch.state) return;
        r = modelFrom({ user: ch.user, state: ch.state, sessions: ch.sessions, account: ch.account, last_seen: 0 });
        updateModel(r, ch);
        S.rows.set(ch.user, r);
        S.order.unshift(ch.user);
        S.liveRows.add(ch.user);
        trimLiveRows();
        scheduleRender();
        if (!lastSeenFromChange(ch)) refreshUser(ch.user); // exact last_seen from the API
    }

    function lastSeenFromChange(ch) {
        if (typeof ch.last_seen === 'number') return ch.last_seen;
        if (['login', 'heartbeat', 'logout'].includes(ch.reason) && typeof ch.at === 'number') return ch.at;
        return 0;
    }

    function updateModel(r, ch) {
        r.state = ch.state;
        if (typeof ch.sessions === 'number') r.sessions = ch.sessions;
        if (typeof ch.account === 'string') r.account = ch.account;
        const ls = lastSeenFromChange(ch);
        if (ls > r.last_seen) r.last_seen = ls;
        if (typeof ch.seq === 'number') r.seq = ch.seq;
        r.flash = true;
    }

    function trimLiveRows() {
        if (S.liveRows.size <= MAX_LIVE_ROWS) return;
        for (let i = S.order.length - 1; i >= 0 && S.liveRows.size > MAX_LIVE_ROWS; i--) {
            const u = S.order[i];
            if (S.liveRows.has(u)) {
                S.liveRows.delete(u);
                S.rows.delete(u);
                S.order.splice(i, 1);
            }
        }
    }

    // Re-read one user; ignored if a newer change arrived meanwhile.
    async function refreshUser(user) {
        const before = S.rows.get(user);
        const seqBefore = before ? before.seq : -1;
        try {
            const u = await api('GET', `/v1/users/${encodeURIComponent(user)}`);
            const r = S.rows.get(user);
            if (!r || r.seq !== seqBefore) return;
            const m = modelFrom(u);
            Object.assign(r, { state: m.state, last_seen: Math.max(r.last_seen, m.last_seen), sessions: m.sessions, account: m.account });
            const pend = S.pending.get(user);
            if (pend && m.account === pend.status) {
                window.clearTimeout(pend.timer);
                S.pending.delete(user);
            }
            renderTable();
        } catch (e) {
            if (!(e instanceof ApiError && e.status === 404)) handleApiError(e, `Loading ${user} failed`);
        }
    }

    let resyncTimer = null;
    function resync(why) {
        if (resyncTimer) return;
        announce('Resynchronising with the server…');
        resyncTimer = window.setTimeout(() => {
            resyncTimer = null;
            fetchStats();
            loadPage();
        }, 50);
        console.info('presence: resync:', why);
    }

    // ---- SSE over fetch -------------------------------------------------------------
    // A small text/event-stream parser (WHATWG HTML "event stream
    // interpretation"): id/event/data/retry fields, ':' comments, a blank line
    // dispatches. Events with an event type but no data (e.g. "resync") are
    // dispatched too.
    function sseParser(onEvent, onRetry) {
        let buf = '';
        let data = [];
        let type = '';
        let id = null;
        function line(l) {
            if (l === '') {
                if (data.length || type) onEvent({ type: type || 'message', data: data.join('\n'), id });
                data = [];
                type = '';
                return;
            }
            if (l[0] === ':') return;
            const i = l.indexOf(':');
            const field = i < 0 ? l : l.slice(0, i);
            let value = i < 0 ? '' : l.slice(i + 1);
            if (value[0] === ' ') value = value.slice(1);
            if (field === 'data') data.push(value);
            else if (field === 'event') type = value;
            else if (field === 'id') { if (!value.includes('\0')) id = value; }
            else if (field === 'retry') { if (/^\d+$/.test(value)) onRetry(Number(value)); }
        }
        return function feed(chunk) {
            buf += chunk;
            let start = 0;
            for (let i = 0; i < buf.length; i++) {
                const c = buf[i];
                if (c !== '\n' && c !== '\r') continue;
                if (c === '\r' && i + 1 === buf.length) break; // maybe \r\n split across chunks
                line(buf.slice(start, i));
                if (c === '\r' && buf[i + 1] === '\n') i++;
                start = i + 1;
            }
            buf = buf.slice(start);
        };
    }

    function stopStream() {
        if (S.stream) S.stream.abort();
        S.stream = null;
        if (S.reconnectTimer) window.clearTimeout(S.reconnectTimer);
        S.reconnectTimer = null;
    }

    async function openStream() {
        stopStream();
        if (!S.token || S.authFailed) return;
        const ctl = new AbortController();
        S.stream = ctl;
        setConn(S.everConnected ? 'reconnecting' : 'connecting', S.everConnected ? 'reconnecting…' : 'connecting…');
        const headers = { Authorization: `Bearer ${S.token}`, Accept: 'text/event-stream' };
        if (S.lastSeq !== null) headers['Last-Event-ID'] = String(S.lastSeq);
        let res;
        try {
            res = await fetch('/v1/events', { headers, signal: ctl.signal, cache: 'no-store' });
        } catch (e) {
            if (ctl.signal.aborted) return;
            return streamLost(`network error: ${e.message || e}`);
        }
        if (res.status === 401 || res.status === 403) {
            const t = await res.text().catch(() => '');
            let msg = '';
            try { msg = JSON.parse(t).error || ''; } catch { /* not JSON */ }
            handleApiError(new ApiError(res.status, msg || res.statusText), 'Event stream');
            return;
        }
        if (!res.ok || !res.body) return streamLost(`HTTP ${res.status}`);
        const wasReconnect = S.everConnected;
        S.everConnected = true;
        setConn('live', 'live');
        if (wasReconnect) announce('Live updates reconnected.');
        clearStreamError();
        // Without a seq to resume from (or after a failed load) the page may
        // be behind: reload it now that changes flow again.
        if (S.pageStale || S.lastSeq === null) resync('stream connected without a known seq');
        const reader = res.body.getReader();
        const dec = new TextDecoder();
        let gotSomething = false;
        const feed = sseParser((ev) => {
            if (!gotSomething) {
                gotSomething = true;
                S.backoff = BACKOFF_MIN_MS;
            }
            onStreamEvent(ev);
        }, (ms) => { S.retryHint = ms; });
        try {
            for (;;) {
                const { value, done } = await reader.read();
                if (done) break;
                // A connection that delivers bytes is healthy: reset the backoff.
                S.backoff = BACKOFF_MIN_MS;
                feed(dec.decode(value, { stream: true }));
            }
            feed(dec.decode());
        } catch (e) {
            if (ctl.signal.aborted) return;
            return streamLost(`connection lost: ${e.message || e}`);
        }
        if (ctl.signal.aborted) return;
        streamLost('the server closed the stream');
    }

    let streamErrorShown = false;
    function clearStreamError() {
        if (streamErrorShown) clearError();
        streamErrorShown = false;
    }

    function streamLost(why) {
        if (S.authFailed) return;
        const delay = S.backoff;
        S.backoff = Math.min(BACKOFF_MAX_MS, S.backoff * 2);
        setConn('reconnecting', `reconnecting… (${why})`);
        if (S.backoff >= BACKOFF_MAX_MS) {
            // Keep trying; make a long outage visible beyond the status pill.
            showError(`Live updates interrupted: ${why}. Retrying every ${BACKOFF_MAX_MS / 1000} s.`);
            streamErrorShown = true;
        }
        S.reconnectTimer = window.setTimeout(() => {
            S.reconnectTimer = null;
            openStream();
        }, delay);
    }

    function onStreamEvent(ev) {
        if (ev.type === 'resync') {
            if (ev.id !== null && /^\d+$/.test(ev.id)) S.lastSeq = Number(ev.id);
            else {
                try {
                    const d = JSON.parse(ev.data);
                    if (d && typeof d.seq === 'number') S.lastSeq = d.seq;
                } catch { /* no data */ }
            }
            resync('server asked to resync');
            return;
        }
        if (!ev.data) return;
        let ch;
        try {
            ch = JSON.parse(ev.data);
        } catch {
            return; // not a change event
        }
        if (ch && typeof ch.seq !== 'number' && ev.id !== null && /^\d+$/.test(ev.id)) ch.seq = Number(ev.id);
        applyChange(ch);
    }

    // ---- account actions ------------------------------------------------------------
    const ACTIONS = {
        suspend: { status: 'suspended', verb: 'Suspend', desc: 'Every session of this user ends now, and logins are refused until the account is reactivated.' },
        ban: { status: 'banned', verb: 'Ban', desc: 'Every session of this user ends now, and logins are refused until the account is reactivated.' },
        reactivate: { status: 'active', verb: 'Reactivate', desc: 'The user can log in again.' },
    };
    let dialogTarget = null; // {user, action, opener}

    function openActionDialog(user, action, opener) {
        const a = ACTIONS[action];
        if (!a) return;
        dialogTarget = { user, action, opener };
        $('action-title').textContent = `${a.verb} ${user}?`;
        $('action-desc').textContent = a.desc;
        $('action-reason').value = '';
        $('action-dialog').returnValue = '';
        const btn = $('action-confirm');
        btn.textContent = a.verb;
        btn.className = `btn ${action === 'reactivate' ? 'btn-primary' : 'btn-danger'}`;
        $('action-dialog').showModal();
        $('action-reason').focus();
    }

    async function confirmAction() {
        const t = dialogTarget;
        if (!t) return;
        const a = ACTIONS[t.action];
        const reason = $('action-reason').value.trim();
        const body = { status: a.status };
        if (reason) body.reason = reason;
        // Show a pending marker; the row changes only when the change event arrives.
        const timer = window.setTimeout(() => {
            // No event in time (stream down?): re-read the truth from the API.
            if (S.pending.get(t.user) && S.pending.get(t.user).status === a.status) {
                S.pending.delete(t.user);
                refreshUser(t.user);
                renderTable();
            }
        }, PENDING_RECONCILE_MS);
        S.pending.set(t.user, { status: a.status, timer });
        renderTable();
        announce(`${a.verb} ${t.user}: request sent, waiting for confirmation.`);
        try {
            await api('PUT', `/v1/users/${encodeURIComponent(t.user)}/account`, body);
        } catch (e) {
            window.clearTimeout(timer);
            S.pending.delete(t.user);
            renderTable();
            handleApiError(e, `${a.verb} ${t.user} failed`);
            announce(`${a.verb} ${t.user} failed.`);
        }
    }

    // ---- details: devices and audit of one user -------------------------------
    let detailsOpener = null;

    async function openDetails(user, opener) {
        detailsOpener = opener;
        $('details-title').textContent = user;
        $('details-devices').replaceChildren(el('li', { class: 'muted', text: 'Loading…' }));
        $('details-audit').replaceChildren();
        $('details-dialog').showModal();
        const enc = encodeURIComponent(user);
        try {
            const [u, a] = await Promise.all([
                api('GET', `/v1/users/${enc}`),
                api('GET', `/v1/users/${enc}/audit?limit=50`),
            ]);
            renderDevices(u);
            renderAudit(a);
        } catch (e) {
            $('details-devices').replaceChildren(el('li', { class: 'muted', text: e && e.status === 404 ? 'Never seen.' : 'Could not load.' }));
            if (!(e && e.status === 404)) handleApiError(e, `Loading ${user} failed`);
        }
    }

    function renderDevices(u) {
        const list = $('details-devices');
        const devs = Array.isArray(u && u.devices) ? u.devices : [];
        if (!devs.length) {
            list.replaceChildren(el('li', { class: 'muted', 'data-testid': 'no-devices', text: 'No live session.' }));
            return;
        }
        const now = Date.now();
        list.replaceChildren(...devs.map((d) => el('li', { 'data-testid': 'device', 'data-session': d.session },
            el('span', { class: `dot dot-${d.state}`, 'aria-hidden': 'true' }),
            el('strong', { text: d.device || 'unnamed device' }),
            ` ${d.state} · since ${exactTime(d.since)} · last seen ${relTime(d.last_seen, now)} · session ${d.session}`)));
    }

    function renderAudit(a) {
        const list = $('details-audit');
        const entries = Array.isArray(a && a.entries) ? a.entries : [];
        if (!entries.length) {
            list.replaceChildren(el('li', { class: 'muted', 'data-testid': 'no-audit', text: 'No account changes.' }));
            return;
        }
        list.replaceChildren(...entries.map((e) => el('li', { 'data-testid': 'audit-entry' },
            el('time', { datetime: new Date(e.at).toISOString(), text: exactTime(e.at) }),
            ` ${e.old} → ${e.new} by `, el('strong', { text: e.by || '?' }),
            e.reason ? `: ${e.reason}` : '')));
    }

    function focusRow(user, action) {
        const q = `button[data-user="${CSS.escape(user)}"]`;
        const b = (action && $('users-body').querySelector(`${q}[data-action="${action}"]`)) || $('users-body').querySelector(q);
        if (b) b.focus();
        else $('users-heading').focus();
    }

    // ---- wiring ----------------------------------------------------------------------
    function start() {
        stopStream();
        S.everConnected = false;
        S.backoff = BACKOFF_MIN_MS;
        if (!S.token) {
            setConn('idle', 'no token');
            openTokenDialog('');
            return;
        }
        // Read the stats first so the stream can resume from their seq: no gap
        // between the snapshot and the live changes.
        (async () => {
            await fetchStats();
            if (S.authFailed) return;
            fetchSeries();
            if (S.stats && typeof S.stats.seq === 'number') S.lastSeq = S.stats.seq;
            await loadPage();
            if (!S.authFailed) openStream();
        })();
    }

    function init() {
        $('token-form').addEventListener('submit', (e) => {
            const v = $('token-input').value.trim().replace(/^Bearer\s+/i, '');
            if (!v) {
                e.preventDefault();
                $('token-error').textContent = 'Enter a token.';
                return;
            }
            setToken(v);
        });
        $('token-cancel').addEventListener('click', () => $('token-dialog').close());
        $('token-dialog').addEventListener('cancel', (e) => {
            // Without a working token there is nothing to show: keep asking.
            if (!S.token || S.authFailed) e.preventDefault();
        });
        $('token-dialog').addEventListener('close', () => $('change-token').focus());
        $('change-token').addEventListener('click', () => openTokenDialog(''));
        $('error-close').addEventListener('click', clearError);

        $('action-form').addEventListener('submit', () => { confirmAction(); });
        $('action-cancel').addEventListener('click', () => $('action-dialog').close('cancel'));
        $('action-dialog').addEventListener('close', () => {
            const t = dialogTarget;
            dialogTarget = null;
            // Return focus to the row the dialog was opened from.
            if (t) window.setTimeout(() => focusRow(t.user, t.action), 0);
        });

        $('details-close').addEventListener('click', () => $('details-dialog').close());
        $('details-dialog').addEventListener('close', () => {
            const o = detailsOpener;
            detailsOpener = null;
            if (o && o.isConnected) window.setTimeout(() => o.focus(), 0);
        });
        $('users-body').addEventListener('click', (e) => {
            const d = e.target.closest('button[data-details]');
            if (d) {
                openDetails(d.dataset.details, d);
                return;
            }
            const b = e.target.closest('button[data-action]');
            if (!b) return;
            if (b.getAttribute('aria-disabled') === 'true') {
                announce(`A change for ${b.dataset.user} is still pending.`);
                return;
            }
            openActionDialog(b.dataset.user, b.dataset.action, b);
        });

        $('search-form').addEventListener('submit', (e) => {
            e.preventDefault();
            const q = $('search-input').value.trim();
            if (!q) {
                showAll();
                return;
            }
            S.mode = 'search';
            S.searchUser = q;
            loadPage();
        });
        $('search-clear').addEventListener('click', () => {
            $('search-input').value = '';
            showAll();
            $('search-input').focus();
        });
        $('filter-state').addEventListener('change', (e) => {
            S.stateFilter = e.target.value;
            S.mode = 'list';
            S.cursor = null;
            S.cursorStack = [];
            loadPage();
        });
        $('filter-account').addEventListener('change', (e) => {
            S.accountFilter = e.target.value;
            renderTable();
        });
        $('page-next').addEventListener('click', () => {
            if (!S.next) return;
            S.cursorStack.push(S.cursor);
            S.cursor = S.next;
            loadPage().then(() => announce(`Page ${S.cursorStack.length + 1}`));
        });
        $('page-prev').addEventListener('click', () => {
            if (!S.cursorStack.length) return;
            S.cursor = S.cursorStack.pop();
            loadPage().then(() => announce(`Page ${S.cursorStack.length + 1}`));
        });
        $('range-hour').addEventListener('click', () => { S.range = 'hour'; renderChart(); });
        $('range-day').addEventListener('click', () => { S.range = 'day'; renderChart(); });

        window.setInterval(fetchStats, SAMPLE_EVERY_MS);
        window.setInterval(fetchSeries, SERIES_EVERY_MS);
        window.setInterval(refreshRelativeTimes, 15000);
        window.setInterval(refreshPageQuietly, PAGE_REFRESH_MS);
        window.setInterval(renderChart, 60000);
        if (window.ResizeObserver) {
            let lastW = 0;
            new ResizeObserver(() => {
                const w = Math.round($('chart').clientWidth);
                if (w !== lastW) {
                    lastW = w;
                    renderChart();
                }
            }).observe($('chart'));
        }
        renderChart();
        renderTable();
        start();
    }

    function showAll() {
        S.mode = 'list';
        S.searchUser = '';
        loadPage();
    }

    // Exposed for debugging and the browser test (read-only use).
    window.presenceDashboard = { state: S, sseParser, refreshPage: () => loadPage(true) };

    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
    else init();
})();
