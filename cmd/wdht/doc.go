// Command wdht runs a BitTorrent mainline DHT node (BEP 5, over UDP) and queries the DHT.
//
// Usage:
//
//	wdht <command> [flags] [arguments]
//
// The commands are:
//
//	node      run a DHT node
//	ping      ping DHT nodes
//	lookup    find the peers of an infohash
//	announce  announce a peer for an infohash
//	version   print wdht's version
//	help      print usage; 'wdht help <command>' prints a command's flags
//
// Flags may come before or after the arguments ("wdht announce IH --port 6882" and
// "wdht announce --port 6882 IH" are the same); "--" ends the flags. The environment
// variable WDHT_LOG sets the level of the logs written to stderr: trace, debug, info,
// warn (the default), error or off.
//
// Exit status: 0 success; 1 the operation failed (no node answered, timeout, nothing
// stored); 2 usage error or bad input (unknown command or flag, missing or extra
// arguments, a malformed infohash, address or port, an unresolvable host name, an
// unreadable state file). Every error names what is wrong, for example
//
//	wdht: lookup: infohash "abc": want 40 hex characters, got 3
//
// # Running a node
//
//	wdht node [--addr IP:PORT] [--bootstrap HOST:PORT,...] [--state FILE] [--k N]
//	          [--status DURATION] [--limits=false] [--max-seconds N]
//
// Node runs a DHT node until SIGINT or SIGTERM. Its flags:
//
//	--addr        address to listen on (default 127.0.0.1:6881); [IP]:PORT for IPv6,
//	              :PORT for every interface, port 0 picks a free one
//	--bootstrap   nodes to join through: comma-separated host:port, may be repeated;
//	              host names are resolved; none (the default) makes a lone node
//	--state       JSON state file (dht.State): loaded at start when it exists (the
//	              node keeps its ID and starts from its nodes), saved atomically every
//	              5 minutes and when the node stops
//	--k           bucket size (default 8)
//	--status      interval of STATUS lines; 0 turns them off (default 10s)
//	--limits      false turns off the per-source inbound rate limit and the outbound
//	              query budget (for benchmarks)
//	--max-seconds stop after N seconds, as on SIGTERM
//
// With --bootstrap the node joins in the background, retrying with backoff until a
// node answers, and again whenever its routing table empties. It prints, to stdout,
// one line when it listens, one every --status, and one when it stops (then it saves
// its state, closes and exits 0):
//
//	LISTENING impl=wdht version=<version> addr=<ip:port> id=<40 hex> pid=<pid>
//	STATUS t=<seconds> nodes=<n> good=<n> peers=<n> infohashes=<n> q_in=<queries/s> q_out=<queries/s>
//	STOPPING impl=wdht pid=<pid>
//
// These are the lines the reference peers' start scripts print, so that a harness can
// treat every node alike. nodes and good count the routing table's nodes and its good
// ones, peers and infohashes the announced peers stored, and q_in and q_out the KRPC
// queries received and sent per second since the previous STATUS line.
//
// # Querying the DHT
//
//	wdht ping     [client flags] [ADDR...]
//	wdht lookup   [client flags] INFOHASH
//	wdht announce [client flags] [--port N] INFOHASH
//
// These commands run a short-lived, read-only (BEP 43) node. They share these flags:
//
//	--addr        address to listen on (default: 127.0.0.1:0 when every node to reach
//	              is on IPv4 loopback, [::1]:0 for IPv6 loopback, else every interface)
//	--bootstrap   nodes to start from: comma-separated host:port, may be repeated
//	              (default 127.0.0.1:6881, a local 'wdht node')
//	--timeout     give up after this long in all (default 30s)
//	--json        print JSON instead of text
//
// An INFOHASH is 40 hex characters, or a magnet URI whose xt=urn:btih: holds 40 hex or
// 32 base32 characters. When no bootstrap node answers, lookup and announce exit 1
// with "no bootstrap node answered (tried 127.0.0.1:6881)".
//
// Ping pings each ADDR (or the --bootstrap nodes when there is none) and prints
//
//	pong from 127.0.0.1:6881 id=<40 hex> rtt=0.42ms
//	{"addr":"127.0.0.1:6881","id":"<40 hex>","rtt_ms":0.42}            (--json)
//
// It exits 1 when an ADDR did not answer.
//
// Lookup joins the DHT and runs a get_peers lookup. It prints each peer to stdout as it
// arrives, then a summary to stderr:
//
//	peer 1.2.3.4:5678
//	found 1 peers from 8 nodes in 3 rounds, 24 queries, 152ms
//
// With --json, stdout holds one JSON object per line: one per peer as it arrives, then
// the summary, the line with "infohash":
//
//	{"peer":"1.2.3.4:5678"}
//	{"infohash":"<40 hex>","peers":["1.2.3.4:5678"],"queries":24,"responses":8,"rounds":3,"duration_ms":152.3,"closest":[{"id":"<40 hex>","addr":"5.6.7.8:6881"}]}
//
// Finding no peers is not an error; lookup exits 1 when no node answered or the
// lookup ran out of time.
//
// Announce joins the DHT, looks the infohash up and announces this host as a peer to
// the closest nodes that answered; without --port (1 to 65535) it uses implied_port,
// so nodes record the port the announce comes from. It prints
//
//	announced <40 hex> port=<port|implied> to 8 nodes
//	{"infohash":"<40 hex>","port":6882,"implied_port":false,"stored":8,"peers":[],"queries":24,"responses":8,"rounds":3,"duration_ms":201.5}
//
// and exits 1 when no node stored it.
package main
