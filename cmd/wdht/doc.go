// Command wdht runs BitTorrent DHT nodes and queries the DHT: the mainline DHT (BEP 5,
// over UDP), the WebTorrent DHT (over WebRTC data channels, which browsers can join), and
// a bridge between them.
//
// Usage:
//
//	wdht <command> [flags] [arguments]
//
// The commands are:
//
//	node      run a DHT node (mainline UDP, WebRTC, or a bridge of both)
//	ping      ping DHT nodes
//	lookup    find the peers of an infohash
//	announce  announce a peer for an infohash
//	put       store a value in the DHT (BEP 44)
//	get       get a value from the DHT (BEP 44)
//	sample    sample the infohashes nodes store (BEP 51)
//	version   print wdht's version
//	help      print usage; 'wdht help <command>' prints a command's flags
//
// Flags may come before or after the arguments ("wdht announce IH --port 6882" and
// "wdht announce --port 6882 IH" are the same); "--" ends the flags. The environment
// variable WDHT_LOG sets the level of the logs written to stderr: trace, debug, info,
// warn (the default), error or off ('wdht node --log-level' overrides it).
//
// Exit status: 0 success; 1 the operation failed (no node answered, timeout, nothing
// stored, item not found, an address in use); 2 usage error or bad input (unknown
// command or flag, missing or extra arguments, a malformed infohash, target, key, seed,
// address or port, a value too large, an unresolvable host name, an unreadable state or
// certificate file, a flag of a transport not in use); 130 a client command stopped by
// SIGINT (128 plus the signal's number: 143 for SIGTERM; wdht node stops cleanly and
// exits 0). Every error names what is wrong, for example
//
//	wdht: lookup: infohash "abc": want 40 hex characters, got 3
//
// A node that answers with a KRPC error is reported as such, with its code and message:
//
//	wdht: lookup: node 192.0.2.1:6881 answered KRPC error 203: get_peers: missing info_hash
//
// With --json, an error also goes to stdout as one JSON object (after the objects
// printed before it):
//
//	{"command":"lookup","error":"node 192.0.2.1:6881 answered KRPC error 203: ...","exit":1,
//	 "node":"192.0.2.1:6881","krpc_code":203,"krpc_message":"..."}
//
// with "usage":true for a usage error (exit 2). An all-zero infohash or target is an
// ordinary ID, on the wire and in every command.
//
// # Running a node
//
//	wdht node [--transports udp,webrtc] [--addr IP:PORT] [--signal-addr IP:PORT]
//	          [--advertise HOST:PORT] [--tls-cert FILE --tls-key FILE] [--loopback]
//	          [--bootstrap HOST:PORT,...|default] [--web-bootstrap HOST:PORT,...]
//	          [--state FILE] [--k N] [--web-k N] [--status DURATION] [--limits=false]
//	          [--max-seconds N] [--log-level LEVEL]
//
// Node runs a DHT node until SIGINT or SIGTERM. With no flags it is a bridge on
// loopback: a mainline node on UDP 127.0.0.1:6881 and a WebTorrent node whose signalling
// server (WebSocket and HTTP on one TCP port, the two variants webtorrent-dht speaks)
// listens on 127.0.0.1:16881. The two nodes keep their own routing tables and IDs and
// share one peer store and one BEP 44 item store; a get that reaches one side for an
// item neither holds is answered from a lookup on the other (package bridge), so that
// browsers read items that live on the mainline DHT. Its flags:
//
//	--transports  udp, webrtc or udp,webrtc (the default, the bridge); udp alone is
//	              the mainline node, webrtc alone the WebRTC node with its
//	              signalling server
//	--addr        UDP address to listen on (default 127.0.0.1:6881); [IP]:PORT for
//	              IPv6, :PORT for every interface, port 0 picks a free one
//	--signal-addr TCP address of the signalling server, in the same forms (default
//	              127.0.0.1:16881)
//	--advertise   the signalling server's public host:port, announced to every WebRTC
//	              peer (as http_server or ws_server, the first message on each
//	              connection) so that it can bootstrap from us later; default
//	              --signal-addr, or with an unspecified IP the address each client
//	              reached; with TLS, a name the certificate holds
//	--tls-cert, --tls-key
//	              certificate and private key files (PEM), both or neither: the
//	              signalling server speaks TLS (wss://, https://), which browsers on
//	              https pages need
//	--loopback    gather only loopback ICE candidates, for nodes on one machine
//	              (default: when --signal-addr and every --web-bootstrap are on
//	              loopback; --loopback=false turns it off)
//	--bootstrap   mainline nodes to join through: comma-separated host:port, may be
//	              repeated; host names are resolved at each attempt; the word
//	              "default" stands for the mainline routers router.bittorrent.com:6881,
//	              dht.transmissionbt.com:6881, router.utorrent.com:6881 and
//	              dht.libtorrent.org:25401 (they are never contacted otherwise, and
//	              cannot be from a node on loopback); none (the default) makes a
//	              lone node
//	--web-bootstrap
//	              signalling servers the WebRTC node joins through: comma-separated
//	              host:port, may be repeated; a name is dialled as it is (for TLS)
//	--state       JSON state file: loaded at start when it exists (the nodes keep their
//	              IDs, the UDP node starts from its nodes, the WebRTC node from the
//	              signalling servers it was connected to), saved atomically every 5
//	              minutes and when the node stops
//	--k           the UDP node's bucket size (default 8)
//	--web-k       the WebRTC node's bucket size (default 2, as webtorrent-dht)
//	--status      interval of STATUS lines; 0 turns them off (default 10s)
//	--limits      false turns off the per-source and global inbound rate limits and
//	              the outbound query budget (for benchmarks)
//	--max-seconds stop after N seconds, as on SIGTERM
//	--no-demo     do not serve the demo page (the node in WebAssembly; built by
//	              'go generate ./cmd/wdht') on GET requests to the signalling port
//	--log-level   trace, debug, info, warn, error or off (default: WDHT_LOG, else warn)
//
// The flags of a side that does not run are a usage error (--signal-addr with
// --transports udp, --addr with --transports webrtc).
//
// With --bootstrap (--web-bootstrap) the UDP (WebRTC) node joins in the background,
// retrying with backoff until a node answers, and again whenever its routing table
// empties. The node prints, to stdout, one line when it listens, one every --status,
// and one when it stops (then it saves its state, closes and exits 0):
//
//	LISTENING impl=wdht version=<version> addr=<ip:port> id=<40 hex> signal=<ip:port> web_id=<40 hex> pid=<pid>
//	STATUS t=<seconds> nodes=<n> good=<n> peers=<n> infohashes=<n> items=<n> q_in=<queries/s> q_out=<queries/s> web_nodes=<n> web_good=<n> web_conns=<n> web_q_in=<queries/s> web_q_out=<queries/s>
//	STOPPING impl=wdht pid=<pid>
//
// These are the lines the reference peers' start scripts print, so that a harness can
// treat every node alike: addr and id are the UDP node's address and ID (for a
// WebRTC-only node, its signalling address and the WebRTC node's ID); signal and
// web_id, there when WebRTC runs, the signalling server's address and the WebRTC node's
// ID. In STATUS, nodes and good count the UDP node's routing table and its good nodes,
// web_nodes and web_good the WebRTC node's; peers and infohashes count the announced
// peers stored, items the BEP 44 items (the stores are shared); web_conns counts the
// open WebRTC connections; q_in and q_out (web_q_in and web_q_out) are the KRPC queries
// the UDP (WebRTC) node received and sent per second since the previous STATUS line. The
// fields of a side that does not run are left out: a UDP-only node prints
//
//	LISTENING impl=wdht version=<version> addr=<ip:port> id=<40 hex> pid=<pid>
//	STATUS t=<seconds> nodes=<n> good=<n> peers=<n> infohashes=<n> items=<n> q_in=<queries/s> q_out=<queries/s>
//
// The state file of a node running WebRTC holds the state of each node, as dht.State
// writes it (a WebRTC node's lists the signalling servers it can bootstrap from, node
// entries without "id"):
//
//	{"mainline":{"id":"<40 hex>","nodes":[{"id":"<40 hex>","host":"1.2.3.4","port":6881}]},
//	 "web":{"id":"<40 hex>","nodes":[{"host":"dht.example.com","port":16881}]}}
//
// A UDP-only node writes the mainline state alone, {"id":...,"nodes":[...]}, the form of
// earlier versions and of bittorrent-dht's toJSON. Both forms load into any node (the
// single form is the mainline node's), and the state of a side that does not run is
// kept as loaded.
//
// # Running a public node
//
// Flags for running a public node (each also from the environment: see below):
//
//	--metrics-addr HOST:PORT
//	      serve /metrics (Prometheus), /healthz (200 while the process runs) and
//	      /readyz (200 when every routing table holds a node and the signalling
//	      server serves, else 503) over HTTP there; :PORT listens on loopback,
//	      0.0.0.0:PORT on every interface; port 0 picks one, printed as
//	      METRICS addr=<ip:port> before LISTENING (default: off)
//	--pprof
//	      also serve Go's profiles under /debug/pprof/ on --metrics-addr
//	--log-format FORMAT
//	      text or json (one JSON object per line, hclog's format) (default text)
//	--trusted-proxy CIDR,...
//	      reverse proxies (CIDR prefixes or IPs; comma-separated, may be
//	      repeated) whose requests to the signalling server carry the client's
//	      address in --proxy-header: for those, the per-IP caps and the logs use
//	      the last address in the header that is not itself a trusted proxy; the
//	      header is ignored from anyone else (default: none)
//	--proxy-header NAME
//	      x-forwarded-for or forwarded (RFC 7239), the one header the trusted
//	      proxies set (default x-forwarded-for)
//	--max-conns N
//	      open WebRTC connections at most (default 1024)
//	--max-pending N
//	      WebRTC offers and answers waiting to connect at most (default 64)
//	--max-pending-per-ip N
//	      the same, per signalling client IP (default 32)
//	--max-peers N, --max-peers-per-infohash N, --peer-ttl DURATION
//	      the peer store: peers kept in all (default 100000), per infohash
//	      (default 200), and how long an announced peer is kept (default 30m)
//	--max-peers-per-source N
//	      peers kept from one source IP (an IPv6 /64) at most (default 0: a
//	      hundredth of --max-peers)
//	--max-items N, --max-item-bytes N, --item-ttl DURATION
//	      the BEP 44 item store: items kept (default 10000), bytes of values and
//	      salts (default 16777216), how long after its last put (default 2h)
//	--max-items-per-source N
//	      items first put by one source IP (an IPv6 /64) at most; a put beyond
//	      gets error 202 (default 0: a hundredth of --max-items)
//	--source-rate N, --source-burst N
//	      the per-source inbound rate limit: queries per second each source IP
//	      (an IPv6 /64) may send, and the burst above it (defaults 100 and 200);
//	      --limits=false turns it off
//	--udp-read-buffer BYTES, --udp-write-buffer BYTES
//	      the UDP socket's SO_RCVBUF and SO_SNDBUF (default 0: the system's; Linux
//	      caps them at net.core.rmem_max and wmem_max)
//	--enforce-secure-ids
//	      the UDP node ignores nodes whose IDs do not match their IPs (BEP 42),
//	      except on local networks (default false)
//
// Every flag can also be set from the environment variable WDHT_ and its name in
// upper case with - as _ (--max-conns: WDHT_MAX_CONNS=1024, --pprof:
// WDHT_PPROF=true); a flag on the command line wins over its variable.
//
// SIGHUP saves the state file (with --state) and loads the TLS certificate and
// key again (with --tls-cert), then prints RELOADED state=<saved|error|off>
// cert=<reloaded|error|off>; open WebSockets and data channels stay up, and
// later TLS handshakes see the new certificate. The server also loads the files
// again by itself when they change. A certificate that does not load leaves the
// previous one in use. --state is checked for writability at start; an empty
// state file starts a fresh node.
//
// # Querying the DHT
//
//	wdht ping     [client flags] [ADDR...]
//	wdht lookup   [client flags] INFOHASH
//	wdht announce [client flags] [--port N] INFOHASH
//	wdht put      [client flags] [--raw] VALUE
//	wdht put      [client flags] --mutable --seed HEX [--salt S] [--seq N] [--cas N] [--raw] VALUE
//	wdht get      [client flags] [--salt S] [--key HEX] [--seq N] TARGET
//	wdht get      [client flags] --key HEX [--salt S] [--seq N]
//	wdht sample   [client flags] [--target HEX] [ADDR...]
//
// These commands run a short-lived, read-only (BEP 43) node, on UDP (the mainline DHT)
// or, with --transport webrtc, on WebRTC (the WebTorrent DHT, with the WebTorrent
// extension, as a browser runs it). They share these flags:
//
//	--transport   udp (the default) or webrtc
//	--addr        UDP address to listen on (default: 127.0.0.1:0 when every node to
//	              reach is on IPv4 loopback, [::1]:0 for IPv6 loopback, else every
//	              interface); not over WebRTC, where a client has no address
//	--bootstrap   nodes to start from: comma-separated host:port, may be repeated;
//	              over WebRTC, signalling servers, which the client dials (a name as
//	              it is, for TLS). Default: a local 'wdht node', 127.0.0.1:6881 over
//	              UDP, its signalling server 127.0.0.1:16881 over WebRTC
//	--loopback    over WebRTC, gather only loopback ICE candidates (default: when
//	              every --bootstrap or ADDR is on loopback; --loopback=false turns it
//	              off)
//	--timeout     give up after this long in all (default 30s)
//	--json        print JSON instead of text (errors too, as {"error":...})
//
// An INFOHASH is 40 hex characters, or a magnet URI whose xt=urn:btih: holds 40 hex or
// 32 base32 characters. When no bootstrap node answers, lookup, announce, put and get
// exit 1 with "no bootstrap node answered (tried 127.0.0.1:6881)"; over WebRTC the
// message says why each signalling server failed, as in "(tried 127.0.0.1:16881:
// connection refused)". Ping and sample query their ADDRs directly and need no
// bootstrap. While lookup, announce, put and get run, a progress line on stderr
// counts the queries sent and answered (and the peers found), when stderr is a
// terminal.
//
// Ping pings each ADDR (or the --bootstrap nodes when there is none) and prints
//
//	pong from 127.0.0.1:6881 id=<40 hex> rtt=0.42ms
//	{"addr":"127.0.0.1:6881","id":"<40 hex>","rtt_ms":0.42}            (--json)
//
// Over WebRTC, an ADDR is a signalling server: ping dials it and pings the node behind
// it over the new connection, and the line adds the connection's peer address and how
// long opening it took:
//
//	pong from 127.0.0.1:16881 id=<40 hex> rtt=0.42ms peer=127.0.0.1:50123 connect=11.20ms
//	{"addr":"127.0.0.1:16881","id":"<40 hex>","rtt_ms":0.42,"peer":"127.0.0.1:50123","connect_ms":11.2}
//
// It exits 1 when an ADDR did not answer.
//
// Lookup runs a get_peers lookup. It prints each peer to stdout as it
// arrives, then a summary to stderr:
//
//	peer 1.2.3.4:5678
//	found 1 peers from 8 nodes in 3 rounds, 24 queries, 152ms
//
// With --json, stdout holds one JSON object per line: one per peer as it arrives, then
// the summary, the line with "infohash":
//
//	{"peer":"1.2.3.4:5678"}
//	{"infohash":"<40 hex>","peers":["1.2.3.4:5678"],"queries":24,"responses":8,"rounds":3,"stalled":1,"duration_ms":152.3,"closest":[{"id":"<40 hex>","addr":"5.6.7.8:6881"}]}
//
// "stalled" counts the queries that passed their soft deadline, which the lookup went on
// without (a dead or slow node); the text summary adds "(1 stalled)" after the queries
// when there were any.
//
// The time in the summary (duration_ms in JSON, and in the JSON of announce, put and
// get) is the real time the command took from the client's start, lookup included.
// A client does not look up its own ID first: over UDP its lookup starts from the
// --bootstrap nodes; over WebRTC it pings the nodes behind the signalling servers it
// dialled and starts from those. Finding no peers is not an error; lookup exits 1 when
// no node answered or the lookup ran out of time. Over WebRTC the nodes relay an offer to each peer they return
// and the client connects to those that answer, as the WebTorrent DHT does: the peers
// printed are the client's connections to them, and a peer that cannot be reached over
// WebRTC (one announced over UDP to a bridge) is not found.
//
// Announce joins the DHT, looks the infohash up and announces this host as a peer to
// the closest nodes that answered; without --port (1 to 65535) it uses implied_port,
// so nodes record the port the announce comes from (over WebRTC, where --port is a
// usage error, the address of the connection the announce comes over). It prints
//
//	announced <40 hex> port=<port|implied> to 8 nodes
//	{"infohash":"<40 hex>","port":6882,"implied_port":false,"stored":8,"peers":[],"queries":24,"responses":8,"rounds":3,"duration_ms":201.5}
//
// and exits 1 when no node stored it. In JSON, port is the announcing socket's port
// when implied_port is true (0 over WebRTC).
//
// # Storing and getting items (BEP 44)
//
// Put joins the DHT and stores VALUE as a BEP 44 item on the nodes closest to its
// target. VALUE is stored as a bencoded string ("hello" as 5:hello); with --raw it must
// itself be one bencoded value, such as i42e or d3:fooi1ee. Bencoded, it may be at most
// 1000 bytes. An immutable item (the default) is stored under the SHA-1 of its bencoded
// value; a mutable item under the SHA-1 of its ed25519 public key and salt, signed, and
// versioned by its sequence number. Put's flags:
//
//	--mutable     store a mutable item (needs --seed)
//	--seed        64 hex characters: the 32-byte ed25519 seed of the signing key
//	--salt        the salt, at most 64 bytes: one key signs one item per salt
//	--seq         the sequence number, 0 or more (default: the seq of the current
//	              version, which put gets first, + 1; or 1 when there is none)
//	--cas         compare-and-swap: nodes holding the item store the new version only
//	              if theirs has seq N
//	--raw         VALUE is already bencoded: store it as it is
//
// --seed, --salt, --seq and --cas are for mutable items: without --mutable they are a
// usage error. Put prints the item's target, and for a mutable item its seq and key:
//
//	stored immutable item <40 hex> on 8 nodes
//	stored mutable item <40 hex> seq=2 key=<64 hex> on 8 nodes
//	{"target":"<40 hex>","mutable":true,"seq":2,"key":"<64 hex>","stored":8,"errors":[],"queries":24,"responses":8,"rounds":3,"duration_ms":201.5}
//
// In JSON, errors lists the nodes that refused or failed ({"id","addr","code","error"},
// code being the KRPC error code), and newest_seq is the newest version the lookup
// saw, when it saw one. Put exits 1 when no node stored the item, and says why: the
// DHT already holds a newer version (it names its seq; put writes nothing then), or
// each node's refusal, such as a --cas that does not match its seq (error 301).
//
// Get joins the DHT and looks up the item stored under TARGET, 40 hex characters as
// put prints them: an immutable item whose value hashes to TARGET, or the newest
// version of a mutable item whose key and salt do. Its flags:
//
//	--salt        the salt of the mutable item: one put with --salt is found only with it
//	--key         64 hex characters: accept only a mutable item signed with this public
//	              key; without TARGET, get the item of this key and --salt
//	--seq         accept only a mutable item with a seq above N
//
// Get prints the value to stdout (a bencoded string as its bytes, with a newline when
// stdout is a terminal; any other value bencoded), then a summary to stderr:
//
//	mutable item <40 hex> seq=2 key=<64 hex> from 8 nodes
//	immutable item <40 hex> from 1 nodes
//
// With --json it prints one object to stdout:
//
//	{"target":"<40 hex>","mutable":true,"seq":2,"key":"<64 hex>","value":"hello","value_type":"string","value_bencoded":"NTpoZWxsbw==","holders":8,"queries":24,"responses":8,"rounds":3,"duration_ms":152.3}
//
// where value is what the text output prints, as a JSON string, or in base64 with
// "value_base64":true when it is not UTF-8; value_type is string, integer, list or
// dictionary; value_bencoded is the bencoded value in base64. Get exits 1 with "item
// <40 hex> not found" when no node returned a valid item.
//
// # Sampling infohashes (BEP 51)
//
// Sample sends sample_infohashes to each ADDR (or the --bootstrap nodes when there is
// none; over WebRTC, to the nodes behind these signalling servers), all at once, each
// within --timeout, without joining the DHT; --target (40 hex, default random) is the ID whose closest
// nodes the answers name. For each answer it prints a line and the sample's infohashes,
// one per line, or one JSON object:
//
//	127.0.0.1:6881 num=2 interval=5m0s samples=2
//	<40 hex>
//	<40 hex>
//	{"addr":"127.0.0.1:6881","num":2,"interval_s":300,"samples":["<40 hex>","<40 hex>"],"nodes":[{"id":"<40 hex>","addr":"5.6.7.8:6881"}]}
//
// num is how many infohashes the node stores, interval how long it keeps answering
// with this sample. The nodes that gave no sample (no answer, or no support for
// sample_infohashes) are listed on stderr; sample exits 1 when none gave one.
//
// # STUN and TURN (WebRTC behind NAT)
//
// Node and every client command running over WebRTC take the ICE flags:
//
//	--ice-server  a STUN or TURN server, repeatable or comma-separated:
//	              stun:HOST[:PORT], turn:USER:PASSWORD@HOST[:PORT][?transport=udp|tcp],
//	              turns:USER:PASSWORD@HOST[:PORT] (ports 3478 and 5349 by default;
//	              percent-encode : and @ in USER and PASSWORD)
//	--ice-username, --ice-credential
//	              the credentials of the TURN servers whose URL carries none
//	--ice-transport-policy
//	              all (the default) or relay: only TURN-relayed connections, so that
//	              peers never see this host's addresses (needs a turn: server)
//
// The default is no server at all: a node offers its own addresses only and contacts no
// third party (webtorrent-dht, through simple-peer, uses public STUN servers by
// default). That suits nodes with public addresses and a LAN; a node behind a NAT needs
// a STUN server to be reached from outside, and a TURN server when its NAT and its
// peer's both map each destination to a new port (symmetric NATs). A node that gathers
// only private host candidates and has no STUN server logs so once, at warn level. A
// node or client on loopback (--loopback, the default when its signalling servers are
// on loopback) refuses a server off loopback (exit 2), so that nothing run on one
// machine contacts a public server. A bad URL, a TURN server without credentials, or
// relay without a TURN server is a usage error.
package main
