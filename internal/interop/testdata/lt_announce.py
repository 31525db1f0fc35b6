#!/usr/bin/python3
"""libtorrent as a DHT *client*: join a loopback network, announce, look the peer up.

Run with Debian's /usr/bin/python3 (python3-libtorrent). The session is the harness's own
(lt_node.make_session from --peers-dir: loopback only, no routers, rate limits lifted), so
this is the unmodified libtorrent with exactly the settings start-libtorrent.sh uses.

libtorrent 2.0.8's Python binding cannot call session.dht_announce() (its flags type is not
exported), so, like the harness's lt_client.py, this adds a magnet-only torrent and lets
libtorrent's own DHT code announce it (dht_announce_interval lowered to 2 s). libtorrent
picks the port it announces (its listen port); the LISTENING line prints it.

Prints:
  LISTENING impl=libtorrent-client version=V addr=127.0.0.1:PORT pid=PID
  STATS t=S nodes=N replacements=R            (with --stats)
  FOUND infohash=HEX peer=H:P                 (peers libtorrent's get_peers lookup returned)
  STOPPING ...
Stops on SIGTERM/SIGINT or after --max-seconds.
"""
import argparse
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
    ap.add_argument("--announce", required=True, help="infohash (40 hex) to announce")
    ap.add_argument("--stats", type=float, default=0)
    ap.add_argument("--max-seconds", type=float, default=300)
    a = ap.parse_args()
    lt, ses, stop, t0 = lt_common.start(a, "libtorrent-client")
    ih = bytes.fromhex(a.announce)

    ses.apply_settings({"dht_announce_interval": 2,
                        "alert_mask": lt.alert.category_t.dht_notification
                        | lt.alert.category_t.dht_operation_notification  # get_peers replies
                        | lt.alert.category_t.status_notification
                        | lt.alert.category_t.error_notification})
    atp = lt.add_torrent_params()
    atp.info_hashes = lt.info_hash_t(lt.sha1_hash(ih))
    atp.save_path = "/tmp"
    atp.name = "wdht-interop"
    ses.add_torrent(atp)

    found = set()
    hard_stop = t0 + a.max_seconds
    next_stats = time.monotonic()
    next_lookup = time.monotonic() + 1
    while not stop["flag"] and time.monotonic() < hard_stop:
        now = time.monotonic()
        if a.stats and now >= next_stats:
            ses.post_dht_stats()
            next_stats += a.stats
        if now >= next_lookup:
            ses.dht_get_peers(lt.sha1_hash(ih))
            next_lookup = now + 1
        ses.wait_for_alert(200)
        for al in ses.pop_alerts():
            if isinstance(al, lt.dht_stats_alert):
                nodes = sum(b["num_nodes"] for b in al.routing_table)
                repl = sum(b["num_replacements"] for b in al.routing_table)
                print("STATS t=%.2f nodes=%d replacements=%d" % (time.monotonic() - t0, nodes, repl), flush=True)
            elif isinstance(al, lt.dht_get_peers_reply_alert) and bytes(al.info_hash.to_bytes()) == ih:
                for pp in al.peers():
                    peer = "%s:%d" % (pp[0], pp[1])
                    if peer not in found:
                        found.add(peer)
                        print("FOUND infohash=%s peer=%s" % (ih.hex(), peer), flush=True)
    print("STOPPING impl=libtorrent-client pid=%d" % os.getpid(), flush=True)
    del ses
    sys.exit(0)


if __name__ == "__main__":
    main()
