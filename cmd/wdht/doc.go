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
//	put       store a value in the DHT (BEP 44)
//	get       get a value from the DHT (BEP 44)
//	sample    sample the infohashes nodes store (BEP 51)
//	version   print wdht's version
//	help      print usage; 'wdht help <command>' prints a command's flags
//
// Flags may come before or after the arguments ("wdht announce IH --port 6882" and
// "wdht announce --port 6882 IH" are the same); "--" ends the flags. The environment
// variable WDHT_LOG sets the level of the logs written to stderr: trace, debug, info,
// warn (the default), error or off.
//
// Exit status: 0 success; 1 the operation failed (no node answered, timeout, nothing
// stored, item not found); 2 usage error or bad input (unknown command or flag, missing
// or extra arguments, a malformed infohash, target, key, seed, address or port, a value
// too large, an unresolvable host name, an unreadable state file). Every error names
// what is wrong, for example
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
//	wdht put      [client flags] [--raw] VALUE
//	wdht put      [client flags] --mutable --seed HEX [--salt S] [--seq N] [--cas N] [--raw] VALUE
//	wdht get      [client flags] [--salt S] [--key HEX] [--seq N] TARGET
//	wdht get      [client flags] --key HEX [--salt S] [--seq N]
//	wdht sample   [client flags] [--target HEX] [ADDR...]
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
// 32 base32 characters. When no bootstrap node answers, lookup, announce, put and get
// exit 1 with "no bootstrap node answered (tried 127.0.0.1:6881)". Ping and sample
// query their ADDRs directly and need no bootstrap.
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
// none), one after another, without joining the DHT; --target (40 hex, default random)
// is the ID whose closest nodes the answers name. For each answer it prints a line and
// the sample's infohashes, one per line, or one JSON object:
//
//	127.0.0.1:6881 num=2 interval=5m0s samples=2
//	<40 hex>
//	<40 hex>
//	{"addr":"127.0.0.1:6881","num":2,"interval_s":300,"samples":["<40 hex>","<40 hex>"],"nodes":[{"id":"<40 hex>","addr":"5.6.7.8:6881"}]}
//
// num is how many infohashes the node stores, interval how long it keeps answering
// with this sample. The nodes that gave no sample (no answer, or no support for
// sample_infohashes) are listed on stderr; sample exits 1 when none gave one.
package main
