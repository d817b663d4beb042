#!/usr/bin/python3
"""Generate vectors.tsv, the golden byte vectors for presence.schema.json.

Uses Python's msgpack (Debian python3-msgpack), an encoder independent of the
C codec, so the C tests check our bytes against someone else's. Columns:
kind, expect ("ok" or the decoder's refusal reason), topic ("-" for none),
hex bytes, expected JSON ("-" for refused frames). Re-run after a schema
change: /usr/bin/python3 schemas/gen_vectors.py > schemas/vectors.tsv
"""
import json
import msgpack

rows = []


def add(kind, expect, topic, obj=None, raw=None):
    data = raw if raw is not None else msgpack.packb(obj, use_bin_type=True)
    js = json.dumps(obj, separators=(",", ":"), ensure_ascii=False) if expect == "ok" else "-"
    rows.append((kind, expect, topic or "-", data.hex(), js))


base = {"v": 1, "type": None, "user": "alice", "at": 1763900000123,
        "src": "gateway-h1-42-1", "seq": 7}


def ev(type_, **extra):
    d = dict(base, type=type_)
    d.update(extra)
    return d


# Valid events, canonical order.
add("event", "ok", "login", ev("login", session="s1"))
add("event", "ok", "login", ev("login", session="0123456789abcdef0123456789abcdef",
                               device="Pixel 7 \u2013 Chrome"))
add("event", "ok", "heartbeat", ev("heartbeat", session="s1"))
add("event", "ok", "heartbeat", ev("heartbeat", session="s1", state="away"))
add("event", "ok", "logout", ev("logout"))
add("event", "ok", "logout", ev("logout", session="s1"))
add("event", "ok", "expire", ev("expire", session="s1", deadline=1763900120123))
add("event", "ok", "account", ev("account", status="suspended"))
add("event", "ok", "account", ev("account", status="banned", reason="spam x" * 20))
add("event", "ok", "heartbeat", ev("heartbeat", user="a" * 64, session="S.-_@:9",
                                   seq=2**64 - 1, at=0))

# Refused events: every kind of malformed frame.
add("event", "not_map", "login", raw=msgpack.packb([1, 2, 3]))
add("event", "not_map", "login", raw=b"")
add("event", "not_map", "login", raw=b"\xc1")
add("event", "not_map", "login", raw=b"\xdd\x0f\xff\xff\xff")        # array32 huge
add("event", "not_map", "login", raw=b"\xdf\xff\xff\xff\xff")        # map32 huge
add("event", "bad_type", "login", raw=msgpack.packb(ev("login", session="s1"))[:-3])
add("event", "unknown_field", "login", ev("login", session="s1", color="red"))
add("event", "missing_field", "login", {k: v for k, v in ev("login").items()})
add("event", "missing_field", "heartbeat", {k: v for k, v in ev("heartbeat", session="s1").items() if k != "seq"})
add("event", "bad_type", "login", ev("login", session="s1", seq="7"))
add("event", "bad_type", "login", ev("login", session=["s1"]))
add("event", "bad_type", "login", ev("login", session={"a": {"b": {"c": 1}}}))
add("event", "bad_version", "login", ev("login", session="s1", v=2))
add("event", "unknown_type", "teleport", ev("teleport", session="s1"))
add("event", "topic_mismatch", "logout", ev("login", session="s1"))
add("event", "bad_user", "login", ev("login", user="al ice", session="s1"))
add("event", "bad_user", "login", ev("login", user="", session="s1"))
add("event", "bad_user", "login", ev("login", user="a" * 65, session="s1"))
add("event", "bad_field", "login", ev("login", session="s/1"))
add("event", "bad_field", "login", ev("login", session="s1", device="tab\x01"))
add("event", "bad_field", "login", raw=msgpack.packb(ev("login", session="s1", device="x"))[:-1] + b"\xff")
add("event", "bad_state", "heartbeat", ev("heartbeat", session="s1", state="offline"))
add("event", "bad_status", "account", ev("account", status="deleted"))
add("event", "bad_seq", "login", ev("login", session="s1", seq=0))
add("event", "bad_type", "login", ev("login", session="s1", at=-5))
add("event", "unknown_field", "heartbeat", ev("heartbeat", session="s1", device="d"))
add("event", "duplicate_field", "login",
    raw=b"\x88" + msgpack.packb(ev("login", session="s1"))[1:] + msgpack.packb("user") + msgpack.packb("bob"))
add("event", "trailing_bytes", "login", raw=msgpack.packb(ev("login", session="s1")) + b"\x00")
add("event", "bad_key", "login", raw=b"\x81\x01\x01")
add("event", "too_big", "login", raw=b"\x81\xa1x\xdb" + (5000).to_bytes(4, "big") + b"y" * 5000)

# Changes.
ch = {"v": 1, "seq": 42, "user": "alice", "state": "online", "prev": "offline",
      "at": 1763900000456, "reason": "login", "sessions": 1, "account": "active"}
add("change", "ok", None, ch)
add("change", "ok", None, dict(ch, session="s1", deadline=1763900120456))
add("change", "ok", None, dict(ch, state="offline", prev="online", reason="suspended",
                               sessions=0, account="suspended"))
add("change", "missing_field", None, {k: v for k, v in ch.items() if k != "prev"})
add("change", "bad_field", None, dict(ch, reason="vanished"))

# Deadline notices.
dl = {"v": 1, "type": "deadline", "user": "alice", "session": "s1", "deadline": 1763900120456}
add("deadline", "ok", None, dl)
add("deadline", "ok", None, dict(dl, deadline=0))
add("deadline", "unknown_type", None, dict(dl, type="change"))

# Queries.
add("query", "ok", None, {"op": "get", "user": "alice"})
add("query", "ok", None, {"op": "list"})
add("query", "ok", None, {"op": "list", "state": "online", "account": "active",
                          "cursor": "alice", "limit": 50})
add("query", "ok", None, {"op": "stats"})
add("query", "ok", None, {"op": "snapshot"})
add("query", "ok", None, {"op": "snapshot", "cursor": "1207", "limit": 10000})
add("query", "ok", None, {"op": "snapshot", "limit": 1})
add("query", "ok", None, {"op": "account", "user": "bob", "status": "banned",
                          "reason": "fraud"})
add("query", "ok", None, {"op": "account", "user": "bob", "status": "banned",
                          "reason": "fraud", "by": "root"})
add("query", "ok", None, {"op": "changes_since", "seq": 0})
add("query", "ok", None, {"op": "changes_since", "seq": 41872, "limit": 10})
add("query", "ok", None, {"op": "get_many", "users": ["alice", "bob", "zed"]})
add("query", "ok", None, {"op": "audit", "user": "bob"})
add("query", "ok", None, {"op": "audit", "user": "bob", "limit": 5})
add("query", "ok", None, {"op": "history", "user": "alice", "limit": 1000})
add("query", "ok", None, {"op": "series", "minutes": 43200})
add("query", "missing_field", None, {"op": "changes_since"})
add("query", "bad limit", None, {"op": "changes_since", "seq": 1, "limit": 1001})
add("query", "users: 1 to 1000 ids", None, {"op": "get_many", "users": []})
add("query", "users: 1 to 1000 ids", None,
    {"op": "get_many", "users": ["u%d" % i for i in range(1001)]})
add("query", "bad user", None, {"op": "get_many", "users": ["alice", "a b"]})
add("query", "bad_type", None, {"op": "get_many", "users": "alice"})
add("query", "bad minutes", None, {"op": "series", "minutes": 0})
add("query", "bad minutes", None, {"op": "series", "minutes": 43201})
add("query", "unknown_field", None, {"op": "get", "user": "a", "by": "root"})
add("query", "missing op", None, {"user": "alice"})
add("query", "unknown op", None, {"op": "drop_tables"})
add("query", "missing_field", None, {"op": "get"})
add("query", "unknown_field", None, {"op": "stats", "user": "x"})
add("query", "bad limit", None, {"op": "list", "limit": 0})
add("query", "bad limit", None, {"op": "list", "limit": 1001})
add("query", "bad limit", None, {"op": "snapshot", "limit": 10001})
add("query", "bad limit", None, {"op": "snapshot", "limit": 0})
add("query", "bad state", None, {"op": "list", "state": "sleepy"})
add("query", "bad user", None, {"op": "get", "user": "../etc"})
add("query", "bad status", None, {"op": "account", "user": "bob", "status": "gone"})
add("query", "not_map", None, raw=b"\x93\x01\x02\x03")

print("# kind\texpect\ttopic\thex\tjson  (generated by gen_vectors.py; do not edit)")
for r in rows:
    print("\t".join(r))
