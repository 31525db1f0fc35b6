'use strict'
// Real webtorrent-dht 0.18.6 nodes in one Node.js process, driven by commands, for wdht's
// mixed-network tests and benchmark (internal/interop/webtorrent, bench/webjoin). The
// library is loaded, unmodified, from <modules>/node_modules (the shared harness).
//
//   node dht.js --modules DIR [--nodes N --listen PORT] [--node JSON] [--duration S]
//
// Every node is a DHT of its own (own ID, own WebRTC connections); they share only the
// process. Commands, one JSON object a line, come from stdin and, for a single node, from
// --node (a "node" command run at start):
//
//   {"cmd":"node","name":"q","listen":PORT,"bootstrap":["h:p"],"noBootstrap":true,
//    "id":"<40 hex>","announce":"<ih>","lookup":"<ih>"}
//       a node: with "listen" a signalling (HTTP) node, dht.listen(PORT, '127.0.0.1');
//       "bootstrap" are its nodes; "noBootstrap" skips the find_node bootstrap lookup (its
//       first lookup then goes straight to the bootstrap nodes). Once ready it runs
//       "announce", then "lookup", as the commands below.
//       "ice":["stun:h:p",...] sets its ICE servers through the library's documented
//       option, simple_peer_opts.config.iceServers ([{urls}]); the default is none.
//   {"cmd":"announce","name":"t","ih":"<ih>"}   announce_peer with implied_port
//   {"cmd":"lookup","name":"q","ih":"<ih>","retries":N}
//       get_peers lookup; every peer found is pinged over the connection the lookup made
//       to learn its node ID. Retried (N times, default 2) while nothing is found.
//   {"cmd":"table","name":"q"}                  the routing table
//   {"cmd":"destroy","name":"q"}
//
// --nodes N --listen PORT starts a network: node n0 listens on PORT and n1..n(N-1)
// bootstrap from it, all at once (NETWORK line when all are ready).
//
// Output lines: "LISTENING impl=webtorrent-dht version=V addr=127.0.0.1:P pid=N" (the
// interop format; P is the first listening port or 0), then per node:
//   NODE <name> id=<hex> listen=<port|0>
//   READY <name> ms=<since the node was made> table=[...]
//   RESULT announce <name> ih=<ih> ok|error=<msg> n=<nodes> ms=<since announce>
//   RESULT peer <name> ih=<ih> addr=<h:p> ms=<since the lookup began> since_start=<ms since the node was made>
//   RESULT peerid <name> ih=<ih> addr=<h:p> id=<hex>|error=<msg>
//   RESULT lookup <name> ih=<ih> peers=<n> ids=[...] ms=<since the lookup began> visited=<n>
//   RESULT table <name> [{"id","addr"}...]
// and UNCAUGHT when the library throws where upstream would crash the process.
// Env: JS_CANDIDATES=ipv4 (default) | loopback | all: as the shared harness's common.js,
// the ICE candidates of remote SDPs are filtered before they reach the library (upstream
// encodes only IPv4 addresses, and libwebrtc prefers ::1). WIRE_LOG=1 logs every frame.
const path = require('path')
const readline = require('readline')

const argv = process.argv.slice(2)
const arg = (n, d) => { const i = argv.indexOf('--' + n); return i >= 0 ? argv[i + 1] : d }
const modules = path.resolve(arg('modules', '.'))
const duration = Number(arg('duration', '120'))
const req = (m) => require(path.join(modules, 'node_modules', m))

function log (...a) { console.log(...a) }
process.on('uncaughtException', (e) => log('UNCAUGHT', String(e && (e.stack || e)).replace(/\n/g, ' | ')))
process.on('unhandledRejection', (e) => log('UNCAUGHT rejection', String(e && (e.stack || e)).replace(/\n/g, ' | ')))

const DHT = req('webtorrent-dht')
const version = req('webtorrent-dht/package.json').version
const WebrtcSocket = req('webtorrent-dht/webrtc-socket')
const wrtc = req('wrtc')
const bencode = req('bencode')

// The shared harness's candidate filter (common.js): remote SDPs keep IPv4 candidates only.
const mode = process.env.JS_CANDIDATES || 'ipv4'
function filterSdp (sdp) {
  if (mode === 'all') return String(sdp)
  return String(sdp).split('\r\n').filter((line) => {
    const m = /^a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ/.exec(line)
    if (!m) return true
    if (mode === 'ipv4') return /^\d+\.\d+\.\d+\.\d+$/.test(m[1])
    return m[1] === '127.0.0.1'
  }).join('\r\n')
}
const origPrepare = WebrtcSocket.prototype._prepare_connection
WebrtcSocket.prototype._prepare_connection = function (initiator) {
  const pc = origPrepare.call(this, initiator)
  const libSignal = pc.signal
  pc.signal = function (signal) {
    if (signal && signal.sdp != null) signal.sdp = filterSdp(signal.sdp)
    return libSignal.call(this, signal)
  }
  if (process.env.WIRE_LOG) {
    const tag = this.__name || '?'
    const show = (d) => { try { return JSON.stringify(bencode.decode(Buffer.from(d)), (k, v) => (v && v.type === 'Buffer') ? Buffer.from(v.data).toString('hex').slice(0, 80) : v) } catch (e) { return Buffer.from(d).toString().slice(0, 200) } }
    pc.on('connect', () => log(`WIRE ${tag} CONNECTED remote=${pc.remoteAddress}:${pc.remotePort} initiator=${initiator}`))
    pc.on('data', (d) => log(`WIRE ${tag} IN ${pc.remoteAddress}:${pc.remotePort} ${show(d)}`))
    const origSend = pc.send
    pc.send = function (chunk) { log(`WIRE ${tag} OUT ${pc.remoteAddress}:${pc.remotePort} ${show(chunk)}`); return origSend.call(this, chunk) }
  }
  return pc
}

const nodes = new Map() // name -> {dht, made}
let firstPort = 0

function hostPort (s) { const i = s.lastIndexOf(':'); return { host: s.slice(0, i), port: Number(s.slice(i + 1)) } }
const hex = (b) => Buffer.from(b).toString('hex')

function makeNode (c) {
  const iceServers = (c.ice || []).map((urls) => ({ urls }))
  const opts = { simple_peer_opts: { wrtc, config: { iceServers } }, nodes: (c.bootstrap || []).map(hostPort) }
  if (c.noBootstrap) opts.bootstrap = false
  if (c.id) opts.nodeId = Buffer.from(c.id, 'hex') // a Buffer: k-rpc-socket-webrtc takes the ID length from it
  const made = Date.now()
  const dht = new DHT(opts)
  const sock = dht._rpc.socket.socket
  sock.__name = c.name
  sock.on('error', () => {}) // peer errors; the library re-emits them here
  dht.on('error', (e) => log(`ERROR ${c.name} ${e && (e.message || e)}`))
  dht.on('warning', () => {})
  const n = { dht, made, name: c.name }
  nodes.set(c.name, n)
  log(`NODE ${c.name} id=${hex(dht.nodeId)} listen=${c.listen || 0}`)
  const steps = () => {
    log(`READY ${c.name} ms=${Date.now() - made} table=${JSON.stringify(table(dht))}`)
    let p = Promise.resolve()
    if (c.announce) p = p.then(() => announce(n, c.announce))
    if (c.lookup) p = p.then(() => lookup(n, c.lookup, c.retries))
    return p
  }
  const ready = new Promise((resolve) => dht.once('ready', resolve))
  if (c.listen) {
    if (!firstPort) firstPort = c.listen
    return new Promise((resolve) => dht.listen(c.listen, '127.0.0.1', resolve)).then(() => ready).then(steps)
  }
  return ready.then(steps)
}

function table (dht) {
  return dht.nodes.toArray().map((x) => ({ id: hex(x.id), addr: `${x.host}:${x.port}` }))
}

function announce (n, ih) {
  const t0 = Date.now()
  return new Promise((resolve) => n.dht.announce(ih, (err, count) => {
    log(`RESULT announce ${n.name} ih=${ih} ${err ? 'error=' + JSON.stringify(err.message || String(err)) : 'ok'} n=${count} ms=${Date.now() - t0}`)
    resolve()
  }))
}

// ping asks a peer for its node ID over the connection a lookup just made. The library
// drops messages that reach it before its own side of a new connection reports it (§11 B4
// of the protocol notes), so the ping waits half a second, and is sent again once.
function ping (dht, peer, tries = 2) {
  return new Promise((resolve) => setTimeout(resolve, 500)).then(() => new Promise((resolve) => {
    if (dht.destroyed) return resolve({ error: 'destroyed' })
    dht._rpc.query(peer, { q: 'ping', a: {} }, (err, res) => {
      if (err) resolve(tries > 1 ? ping(dht, peer, tries - 1) : { error: err.message || String(err) })
      else resolve({ id: res && res.r && res.r.id ? hex(res.r.id) : '' })
    })
  }))
}

function lookup (n, ih, retries = 2) {
  const t0 = Date.now()
  const found = new Map() // addr -> ping promise
  const onpeer = (peer, infoHash) => {
    if (hex(infoHash) !== ih) return
    const addr = `${peer.host}:${peer.port}`
    if (found.has(addr)) return
    if (found.size === 0) log(`RESULT peer ${n.name} ih=${ih} addr=${addr} ms=${Date.now() - t0} since_start=${Date.now() - n.made}`)
    found.set(addr, ping(n.dht, peer).then((r) => {
      log(`RESULT peerid ${n.name} ih=${ih} addr=${addr} ${r.error ? 'error=' + JSON.stringify(r.error) : 'id=' + r.id}`)
      return r.id
    }))
  }
  n.dht.on('peer', onpeer)
  const attempt = (left) => new Promise((resolve) => n.dht.lookup(ih, (err, visited) => resolve({ err, visited })))
    .then((r) => (found.size === 0 && left > 0 && !n.dht.destroyed) ? attempt(left - 1) : r)
  return attempt(retries).then(async (r) => {
    const ids = (await Promise.all(found.values())).filter(Boolean)
    n.dht.removeListener('peer', onpeer)
    log(`RESULT lookup ${n.name} ih=${ih} peers=${found.size} ids=${JSON.stringify(ids)} ms=${Date.now() - t0} visited=${r.visited || 0}${r.err ? ' error=' + JSON.stringify(r.err.message || String(r.err)) : ''}`)
  })
}

function run (c) {
  const n = nodes.get(c.name)
  switch (c.cmd) {
    case 'node': return makeNode(c)
    case 'announce': return n && announce(n, c.ih)
    case 'lookup': return n && lookup(n, c.ih, c.retries)
    case 'table': log(`RESULT table ${c.name} ${JSON.stringify(n ? table(n.dht) : [])}`); return
    case 'destroy': if (n) { nodes.delete(c.name); n.dht.destroy(() => log(`DESTROYED ${c.name}`)) } return
  }
  log(`ERROR unknown command ${JSON.stringify(c)}`)
}

async function main () {
  const count = Number(arg('nodes', '0'))
  const listen = Number(arg('listen', '0'))
  const single = arg('node')
  if (single) firstPort = JSON.parse(single).listen || 0
  if (count > 0) firstPort = listen
  log(`LISTENING impl=webtorrent-dht version=${version} addr=127.0.0.1:${firstPort} pid=${process.pid}`)
  if (count > 0) {
    const t0 = Date.now()
    await makeNode({ name: 'n0', listen })
    // All at once, each bootstrapping from n0 (as bench/webjoin builds its network of ours).
    const joins = []
    for (let i = 1; i < count; i++) joins.push(makeNode({ name: 'n' + i, bootstrap: [`127.0.0.1:${listen}`] }))
    await Promise.all(joins)
    log(`NETWORK nodes=${count} ms=${Date.now() - t0}`)
  }
  if (single) run(JSON.parse(single))
  const rl = readline.createInterface({ input: process.stdin })
  rl.on('line', (line) => {
    line = line.trim()
    if (!line) return
    let c
    try { c = JSON.parse(line) } catch (e) { return log(`ERROR bad command ${line}`) }
    Promise.resolve(run(c)).catch((e) => log(`ERROR ${c.cmd} ${e && e.stack}`))
  })
}

function stop () {
  for (const n of nodes.values()) { try { n.dht.destroy() } catch (e) {} }
  setTimeout(() => process.exit(0), 300).unref()
}
setTimeout(stop, duration * 1000).unref()
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
setInterval(() => {}, 1 << 30) // stay alive until stop
main().catch((e) => { log('ERROR main ' + (e && e.stack)); stop() })
