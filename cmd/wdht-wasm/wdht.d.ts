// Types of the wdht WebAssembly node: cmd/wdht-wasm (GOOS=js GOARCH=wasm), loaded by
// wdht.js after the Go installation's wasm_exec.js. The node is the same Go code as the
// native one (KRPC, Kademlia, the WebTorrent extension, the WebRTC transport over the
// browser's RTCPeerConnection): it joins the WebTorrent DHT through signalling servers
// (WebSocket, then HTTP POST) and answers other nodes as a full node, with K=2 as the JS
// webtorrent-dht.

/** Loads wdht.wasm (default "wdht.wasm", relative to the page) and resolves to the API. */
declare function loadWdht(url?: string): Promise<Wdht>;

interface Wdht {
  /** "wdht-wasm". */
  readonly version: string;
  /** Starts a node and joins the DHT: dials every bootstrap signalling server, then looks up
   * its own ID. Rejects when no server answered or nobody answered the lookup. */
  start(options?: StartOptions): Promise<WdhtNode>;
  /** Adds a listener of the events of every node of the page. */
  on<E extends keyof WdhtEvents>(event: E, listener: (e: WdhtEvents[E]) => void): void;
  off<E extends keyof WdhtEvents>(event: E, listener: (e: WdhtEvents[E]) => void): void;
}

interface StartOptions {
  /** Signalling servers, "host:port" (ws:// then http://; wss:// and https:// first for
   * names). Default: the page's own host. */
  bootstrap?: string[];
  /** STUN and TURN servers, as RTCIceServer. Default: none. */
  iceServers?: { urls: string | string[]; username?: string; credential?: string }[];
  /** How long the join may take, in milliseconds. Default 30000. */
  timeout?: number;
  /** "trace", "debug", "info" (default), "warn", "error" or "off". */
  logLevel?: string;
}

/** What a lookup (get_peers, get, put, announce) did. */
interface LookupStats {
  queries: number;
  responses: number;
  ms: number;
}

interface WdhtNode {
  /** The node's ID, 40 hex digits. */
  readonly id: string;
  /** get_peers: calls onPeer with every new peer ("ip:port") as answers arrive; resolves
   * with all of them. infohash: 40 hex digits. */
  lookup(infohash: string, onPeer?: (peer: string) => void): Promise<LookupStats & { peers: string[] }>;
  /** announce_peer to the closest nodes; port 0 (the default) is implied_port, the only
   * meaningful choice over WebRTC. */
  announce(infohash: string, port?: number): Promise<LookupStats & { stored: number }>;
  /** BEP 44 get: the newest valid item at target (signature and target checked). */
  get(target: string, options?: GetOptions): Promise<LookupStats & ({ found: false } | ({ found: true; holders: number } & Item))>;
  /** BEP 44 put: an immutable item, or with seed a mutable one. */
  put(item: PutItem): Promise<LookupStats & Item & { stored: number }>;
  /** Pings a node ("ip:port": a peer a lookup found, a connected node) over its
   * connection, or one that get_peers or find_node signalling opened; resolves with its ID. */
  ping(addr: string): Promise<{ id: string; ms: number }>;
  /** Counters now. */
  stats(): { nodes: number; connections: number; peers: number; items: number; queriesIn: number; queriesOut: number };
  /** Closes every connection and stops the node. */
  close(): Promise<null>;
}

interface GetOptions {
  /** The salt of a mutable item, as UTF-8. */
  salt?: string;
  /** Only items signed by this public key (64 hex digits). */
  key?: string;
  /** Only versions newer than this sequence number. */
  seq?: number;
}

interface PutItem {
  /** The value, stored as a bencoded string (at most 1000 bytes bencoded). */
  value: string;
  /** A mutable item's ed25519 seed, 64 hex digits; absent: an immutable item. */
  seed?: string;
  /** A mutable item's salt, as UTF-8, at most 64 bytes. */
  salt?: string;
  /** A mutable item's sequence number; default: the stored version's + 1, or 1. */
  seq?: number;
}

interface Item {
  /** The item's target, 40 hex digits. */
  target: string;
  mutable: boolean;
  /** The bencoded value, in hex. */
  v: string;
  /** The value, when it is a bencoded string. */
  value?: string;
  /** Mutable items: sequence number, public key (64 hex), salt. */
  seq?: number;
  key?: string;
  salt?: string;
}

interface WdhtEvents {
  /** The node's state: "joining", "ready", "closed". */
  state: { state: "joining" | "ready" | "closed"; id?: string; nodes?: number; connections?: number; peers?: number; items?: number };
  /** A WebRTC connection opened or closed; server is the signalling server the peer announced. */
  connection: { event: "open" | "close"; addr: string; server?: string };
  /** A peer a lookup found. */
  peer: { infohash: string; addr: string };
  /** A log line of the node. */
  log: { line: string };
}
