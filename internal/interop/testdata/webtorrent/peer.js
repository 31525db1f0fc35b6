'use strict'
// A real webtorrent-dht node in Node.js for wdht's WebRTC interop tests
// (internal/interop/webtorrent). The library is loaded, unmodified, from
// <modules>/node_modules: the shared harness's 0.18.6 (HTTP signalling) or
// testdata/webtorrent-ws's 0.16.2 (WebSocket signalling).
//
//   node peer.js --modules DIR --role server --port P [--duration S]
//       a bootstrap node: dht.listen(P, '127.0.0.1'), answering everything until --duration
//   node peer.js --modules DIR --role client --bootstrap H:P [--duration S]
//       a WebRTC-only node: bootstraps from H:P, then pings H:P (through the alias of the
//       bootstrap connection), prints the result and lingers until --duration
//
// Output (one line each): the LISTENING line of internal/interop
// ("LISTENING impl=webtorrent-dht version=V addr=127.0.0.1:P id=HEX pid=N"), then
// CONNECTED, ANNOUNCED (a peer's first-message ws_server/http_server), QUERY, ALIAS,
// READY, RESULT ping ok|error ..., RESULT servers [...] and, should the library throw
// where upstream would crash the process, UNCAUGHT.
const path = require('path')

const argv = process.argv.slice(2)
const arg = (n, d) => { const i = argv.indexOf('--' + n); return i >= 0 ? argv[i + 1] : d }
const modules = path.resolve(arg('modules', '.'))
const role = arg('role', 'server')
const duration = Number(arg('duration', '60'))
const req = (m) => require(path.join(modules, 'node_modules', m))

function log (...a) { console.log(...a) }
process.on('uncaughtException', (e) => log('UNCAUGHT', String(e && (e.stack || e)).replace(/\n/g, ' | ')))
process.on('unhandledRejection', (e) => log('UNCAUGHT rejection', String(e && (e.stack || e)).replace(/\n/g, ' | ')))

const DHT = req('webtorrent-dht')
const version = req('webtorrent-dht/package.json').version
const WebrtcSocket = req('webtorrent-dht/webrtc-socket')
const wrtc = req('wrtc')

// Observe connections (no change to what the library does).
const origPrepare = WebrtcSocket.prototype._prepare_connection
WebrtcSocket.prototype._prepare_connection = function (initiator) {
  const pc = origPrepare.call(this, initiator)
  pc.on('connect', () => log(`CONNECTED remote=${pc.remoteAddress}:${pc.remotePort} initiator=${initiator}`))
  let first = true
  pc.on('data', () => { // runs after the library's own handler
    if (!first) return
    first = false
    const s = pc.http_server || pc.ws_server
    if (s) log(`ANNOUNCED ${pc.http_server ? 'http_server' : 'ws_server'} ${s.host}:${s.port} by ${pc.remoteAddress}:${pc.remotePort}`)
  })
  pc.on('close', () => log(`CLOSED remote=${pc.remoteAddress}:${pc.remotePort}`))
  return pc
}

const opts = { simple_peer_opts: { wrtc, config: { iceServers: [] } }, nodes: [] }
let bootstrap = null
if (role === 'client') {
  const b = arg('bootstrap')
  const i = b.lastIndexOf(':')
  bootstrap = { host: b.slice(0, i), port: Number(b.slice(i + 1)) }
  opts.nodes = [bootstrap]
}
const dht = new DHT(opts)
const id = dht.nodeId.toString('hex')
const sock = dht._rpc.socket.socket
sock.on('error', (e) => log('SOCKET-ERROR', e && (e.message || e.type || e)))
dht.on('error', (e) => log('ERROR', e && (e.message || e)))
dht.on('warning', (e) => log('WARNING', e && (e.message || e)))
dht._rpc.on('query', (q, peer) => log(`QUERY ${q.q} from ${peer.address}:${peer.port}`))
for (const ev of ['http_peer_connection_alias', 'websocket_peer_connection_alias']) {
  sock.on(ev, (h, p, pc) => log(`ALIAS ${h}:${p} -> ${pc.remoteAddress}:${pc.remotePort}`))
}

function servers () {
  const s = sock.known_http_servers ? sock.known_http_servers() : sock.known_ws_servers()
  return JSON.stringify(s)
}

if (role === 'server') {
  const port = Number(arg('port'))
  dht.listen(port, '127.0.0.1', () => {
    log(`LISTENING impl=webtorrent-dht version=${version} addr=127.0.0.1:${port} id=${id} pid=${process.pid}`)
  })
  setInterval(() => log(`STATUS servers ${servers()} connections ${JSON.stringify(Object.keys(sock._peer_connections))}`), 1000).unref()
} else {
  log(`LISTENING impl=webtorrent-dht version=${version} addr=127.0.0.1:0 id=${id} pid=${process.pid}`)
  dht.once('ready', () => {
    log(`READY nodes ${JSON.stringify(dht.nodes.toArray().map((n) => `${n.host}:${n.port}`))}`)
    const t0 = Date.now()
    dht._rpc.query(bootstrap, { q: 'ping', a: {} }, (err, res, peer) => {
      if (err) {
        log(`RESULT ping error ${err.message || err}`)
      } else {
        const rid = res && res.r && res.r.id
        log(`RESULT ping ok id=${rid ? Buffer.from(rid).toString('hex') : '-'} from=${peer && (peer.address || peer.host)}:${peer && peer.port} rtt=${Date.now() - t0}ms`)
      }
      log(`RESULT servers ${servers()}`)
    })
  })
}

function stop () {
  try { dht.destroy() } catch (e) {}
  setTimeout(() => process.exit(0), 200).unref()
}
setTimeout(stop, duration * 1000).unref()
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
setInterval(() => {}, 1 << 30) // stay alive until stop
