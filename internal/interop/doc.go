// Package interop runs real, unmodified BitTorrent DHT implementations (libtorrent,
// bittorrent-dht, anacrolix/dht) on loopback so that tests and bench programs can talk to
// them.
//
// The peers come from the project's shared harness, ../shared/interop/udp-peers (see its
// README.md; $WDHT_SHARED overrides where the shared directory is): Start runs one of its
// start scripts, waits for the LISTENING line and hands back a Peer with the address, PID,
// node ID (when printed) and everything the process printed. StartProcess does the same
// for driver programs that use a real implementation's client code. Available says
// whether an implementation can run on this machine; a fresh machine gets all of them
// from the harness's install.sh.
//
// Every process runs in its own process group and stops with SIGTERM (SIGKILL to its group
// after StopGrace). Every start script also exits by itself after --max-seconds, and on
// Linux the kernel sends it SIGTERM should the test binary die, so a crashed test leaves
// nothing running.
//
// The package's tests are the interop suite: our node against each implementation (both
// ways) and mixed networks of their nodes and ours. WebtorrentDir, WebtorrentBundle and
// Chromium locate the WebTorrent DHT peers (webtorrent-dht 0.18.6 from the shared
// js-webtorrent-dht harness, 0.16.2 from testdata/webtorrent-ws, headless Chromium), which
// the tests of package internal/interop/webtorrent run against transport/webrtc. They skip an implementation that is
// not installed, unless the environment variable CI is set: then it is a failure.
package interop
