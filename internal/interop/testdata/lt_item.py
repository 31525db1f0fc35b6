#!/usr/bin/python3
"""libtorrent as a BEP 44 / BEP 51 DHT *client*: join a loopback network, then run --op steps.

Run with Debian's /usr/bin/python3 (python3-libtorrent). The session is the harness's own
(lt_node.make_session from --peers-dir: loopback only, no routers, rate limits lifted), so
this is the unmodified libtorrent with exactly the settings start-libtorrent.sh uses. Every
step is libtorrent's own client code (session.dht_put_immutable_item, dht_get_immutable_item,
dht_put_mutable_item, dht_get_mutable_item, dht_sample_infohashes); this script only calls
it and reports the alerts.

Steps (--op, repeatable, run in order once the routing table is not empty; HEX is hex):
  put-immutable:VHEX           put the bencoded value VHEX
  get-immutable:TARGET         get the immutable item TARGET
  put-mutable:SALTHEX:DATAHEX  put the string DATA under --seed/--pubkey and salt; libtorrent's
                               put first looks the item up and publishes seq = newest seen + 1
  get-mutable:PUBHEX:SALTHEX   get the mutable item (waits for the authoritative answer)
  sample:HOST:PORT:TARGET      one sample_infohashes query to HOST:PORT (BEP 51)

Binding gaps of libtorrent 2.0.8 met here: there is no ed25519 function, so the 64-byte
secret key dht_put_mutable_item wants (libtorrent's ed25519 "private key": SHA-512 of the
seed, clamped) is derived here with hashlib and the public key comes from --pubkey; alert
fields holding a salt (dht_put_alert.salt, dht_mutable_item_alert.salt) and message() are
decoded as UTF-8 and raise on other bytes, so salts must be UTF-8; dht_immutable_item_alert.item
comes back as {'key': target, 'value': v} and raises RuntimeError when nothing was found.

Prints:
  LISTENING impl=libtorrent-item version=V addr=127.0.0.1:PORT pid=PID
  READY nodes=N
  RESULT {"i": step index, "op": ..., "ok": ..., ...}     one JSON line per step
  DONE
  STOPPING ...
then keeps running (its DHT node answers queries) until SIGTERM/SIGINT or --max-seconds.
"""
import argparse
import hashlib
import json
import os
import lt_common
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peers-dir", required=True, help="the harness directory (lt_node.py)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--bootstrap", default="")
    ap.add_argument("--stats", type=float, default=0)
    ap.add_argument("--max-seconds", type=float, default=300)
    ap.add_argument("--seed", default="", help="32-byte ed25519 seed (hex) for put-mutable")
    ap.add_argument("--pubkey", default="", help="its public key (hex)")
    ap.add_argument("--op", action="append", default=[])
    ap.add_argument("--step-timeout", type=float, default=30)
    a = ap.parse_args()
    lt, ses, stop, t0 = lt_common.start(a, "libtorrent-item")
    hard_stop = t0 + a.max_seconds
    ses.apply_settings({"alert_mask": lt.alert.category_t.dht_notification
                        | lt.alert.category_t.dht_operation_notification
                        | lt.alert.category_t.status_notification
                        | lt.alert.category_t.error_notification})

    def table_size():
        ses.post_dht_stats()
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            ses.wait_for_alert(100)
            for al in ses.pop_alerts():
                if isinstance(al, lt.dht_stats_alert):
                    return sum(b["num_nodes"] for b in al.routing_table)
        return 0

    # The routing table must not be empty before a lookup: libtorrent starts its traversals
    # from it (the bootstrap nodes enter it once they answer the pings add_dht_node sent).
    nodes = 0
    while not stop["flag"] and a.bootstrap.strip() and time.monotonic() < t0 + 20:
        nodes = table_size()
        if nodes >= 1:
            break
    print("READY nodes=%d" % nodes, flush=True)

    def wait_for(match):
        """Process alerts until match(alert) returns a result (not None), or the step times
        out (None)."""
        deadline = time.monotonic() + a.step_timeout
        while time.monotonic() < deadline and not stop["flag"]:
            ses.wait_for_alert(100)
            for al in ses.pop_alerts():
                r = match(al)
                if r is not None:
                    return r
        return None

    secret = b""
    pub = bytes.fromhex(a.pubkey)
    if a.seed:
        h = bytearray(hashlib.sha512(bytes.fromhex(a.seed)).digest())
        h[0] &= 248
        h[31] &= 63
        h[31] |= 64
        secret = bytes(h)

    def put_immutable(vhex):
        v = lt.bdecode(bytes.fromhex(vhex))
        target = ses.dht_put_immutable_item(v)
        tb = bytes(target.to_bytes())

        def match(al):
            if isinstance(al, lt.dht_put_alert) and bytes(al.target.to_bytes()) == tb:
                return {"ok": al.num_success > 0, "n": al.num_success, "target": tb.hex()}
        return wait_for(match) or {"ok": False, "err": "timeout", "target": tb.hex()}

    def get_immutable(target_hex):
        tb = bytes.fromhex(target_hex)
        ses.dht_get_immutable_item(lt.sha1_hash(tb))

        def match(al):
            if isinstance(al, lt.dht_immutable_item_alert) and bytes(al.target.to_bytes()) == tb:
                try:
                    item = al.item
                except RuntimeError as e:
                    # Nothing found, or a value that is not a string: the binding converts
                    # only string items ("invalid type requested from entry").
                    try:
                        msg = al.message()
                    except Exception as e2:  # non-UTF-8 bytes in the message
                        msg = "(message: %s)" % e2
                    return {"ok": True, "found": False, "err": "binding: %s" % e, "message": msg}
                if isinstance(item, dict):  # the 2.0.8 binding: {'key': target, 'value': v}
                    item = item.get("value")
                return {"ok": True, "found": item is not None, "v": lt.bencode(item).hex()}
        return wait_for(match) or {"ok": False, "err": "timeout"}

    def put_mutable(salt_hex, data_hex):
        salt = bytes.fromhex(salt_hex)
        ses.dht_put_mutable_item(secret, pub, bytes.fromhex(data_hex), salt)

        def match(al):
            if isinstance(al, lt.dht_put_alert) and bytes(al.public_key) == pub and al.salt.encode() == salt:
                return {"ok": al.num_success > 0, "n": al.num_success, "seq": al.seq,
                        "sig": bytes(al.signature).hex()}
        return wait_for(match) or {"ok": False, "err": "timeout"}

    def get_mutable(pub_hex, salt_hex):
        k, salt = bytes.fromhex(pub_hex), bytes.fromhex(salt_hex)
        ses.dht_get_mutable_item(k, salt)
        first = {}

        def match(al):
            if isinstance(al, lt.dht_mutable_item_alert) and bytes(al.key) == k and al.salt.encode() == salt:
                item = al.item
                v = item.get("value") if isinstance(item, dict) else None
                r = {"ok": True, "found": al.seq > 0 or bool(v), "seq": al.seq,
                     "sig": bytes(al.signature).hex(), "authoritative": bool(al.authoritative)}
                if v is not None:
                    r["v"] = lt.bencode(v).hex()
                if not al.authoritative:
                    # libtorrent reports what it has found so far, then once more at the end
                    first.setdefault("r", r)
                    return None
                r["first_seq"] = first["r"]["seq"] if "r" in first else None
                return r
        return wait_for(match) or dict(first.get("r", {}), ok=False, err="timeout")

    def sample(host, port_s, target_hex):
        ep = (host, int(port_s))
        ses.dht_sample_infohashes(ep, lt.sha1_hash(bytes.fromhex(target_hex)))

        def match(al):
            if isinstance(al, lt.dht_sample_infohashes_alert) and tuple(al.endpoint) == ep:
                iv = al.interval
                return {"ok": True, "samples": [bytes(s.to_bytes()).hex() for s in al.samples],
                        "num": al.num_infohashes,
                        "interval": iv.total_seconds() if hasattr(iv, "total_seconds") else iv,
                        "nodes": ["%s@%s:%d" % (bytes(n["nid"].to_bytes()).hex(), n["endpoint"][0], n["endpoint"][1])
                                  for n in al.nodes]}
        return wait_for(match) or {"ok": False, "err": "timeout (no reply)"}

    for i, op in enumerate(a.op):
        if stop["flag"]:
            break
        kind, _, rest = op.partition(":")
        args = rest.split(":") if rest else []
        t = time.monotonic()
        try:
            if kind == "put-immutable":
                r = put_immutable(*args)
            elif kind == "get-immutable":
                r = get_immutable(*args)
            elif kind == "put-mutable":
                r = put_mutable(*args)
            elif kind == "get-mutable":
                r = get_mutable(*args)
            elif kind == "sample":
                r = sample(*args)
            else:
                r = {"ok": False, "err": "unknown op"}
        except Exception as e:  # report, do not die: the Go test reads the RESULT line
            r = {"ok": False, "err": "%s: %s" % (type(e).__name__, e)}
        r.update({"i": i, "op": kind, "seconds": round(time.monotonic() - t, 3)})
        print("RESULT " + json.dumps(r, sort_keys=True), flush=True)
    print("DONE", flush=True)

    next_stats = time.monotonic()
    while not stop["flag"] and time.monotonic() < hard_stop:
        if a.stats and time.monotonic() >= next_stats:
            ses.post_dht_stats()
            next_stats += a.stats
        ses.wait_for_alert(200)
        for al in ses.pop_alerts():
            if isinstance(al, lt.dht_stats_alert):
                n = sum(b["num_nodes"] for b in al.routing_table)
                repl = sum(b["num_replacements"] for b in al.routing_table)
                print("STATS t=%.2f nodes=%d replacements=%d" % (time.monotonic() - t0, n, repl), flush=True)
    print("STOPPING impl=libtorrent-item pid=%d" % os.getpid(), flush=True)
    del ses
    sys.exit(0)


if __name__ == "__main__":
    main()
