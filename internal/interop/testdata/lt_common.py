"""The start both libtorrent driver scripts share (lt_announce.py, lt_item.py).

start() makes the harness's own session (lt_node.make_session from --peers-dir: loopback
only, no routers, rate limits lifted), turns SIGTERM and SIGINT into stop["flag"], waits
for the UDP listen socket, adds the bootstrap nodes and prints the LISTENING line.
"""
import os
import signal
import sys
import time


def start(a, impl):
    """Returns (lt, ses, stop, t0): the libtorrent module, the session, the stop flag
    ({"flag": bool}) and the monotonic start time. a holds --peers-dir, --host, --port
    and --bootstrap; impl names the driver in the LISTENING line."""
    sys.path.insert(0, a.peers_dir)
    import libtorrent as lt
    from lt_node import hp, make_session

    boot = [hp(x) for x in a.bootstrap.split(",") if x.strip()]
    ses = make_session(a.host, a.port, boot)
    stop = {"flag": False}

    def on_sig(signum, frame):
        stop["flag"] = True

    signal.signal(signal.SIGTERM, on_sig)
    signal.signal(signal.SIGINT, on_sig)

    t0 = time.monotonic()
    port = None
    while port is None and time.monotonic() < t0 + 20 and not stop["flag"]:
        ses.wait_for_alert(200)
        for al in ses.pop_alerts():
            if isinstance(al, lt.listen_succeeded_alert) and int(al.socket_type) == int(lt.socket_type_t.udp):
                port = al.port
    if port is None:
        print("no UDP listen socket", file=sys.stderr, flush=True)
        sys.exit(1)
    for h, p in boot:
        ses.add_dht_node((h, p))
    print("LISTENING impl=%s version=%s addr=%s:%d pid=%d" % (impl, lt.__version__, a.host, port, os.getpid()),
          flush=True)
    return lt, ses, stop, t0
