// bittorrent-dht (webtorrent, npm v11) as a DHT *client*: join a loopback network through
// --bootstrap, announce with dht.announce(), then look the infohashes up with dht.lookup().
// The library is the unmodified one the harness installed (<peers-dir>/js/node_modules).
//
// Usage: node bt_announce.mjs --peers-dir DIR --bootstrap H:P[,H:P] --announce IH:PORT[,IH:PORT]
//        [--host 127.0.0.1] [--port 0] [--stats S] [--max-seconds N]
// PORT 0 announces with implied_port=1 (the peer is our DHT socket's address).
// Prints:
//   LISTENING impl=bittorrent-dht-client version=V addr=H:P id=HEX pid=PID
//   READY nodes=N                                   (bootstrap done)
//   ANNOUNCED infohash=HEX port=P responses=N err=E  (announce_peer answers)
//   FOUND infohash=HEX peer=H:P from=H:P              (dht.lookup results)
//   LOOKUP-DONE infohash=HEX err=E
//   STATS t=S nodes=N                                 (with --stats)
// Stops on SIGTERM/SIGINT or after --max-seconds.
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import url from 'node:url'

function arg (name, def) {
  const i = process.argv.indexOf('--' + name)
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def
}

function isLoopback (h) {
  return net.isIPv4(h) ? h.startsWith('127.') : h === '::1'
}

const peersDir = arg('peers-dir')
if (!peersDir) { console.error('--peers-dir is required'); process.exit(2) }
const host = arg('host', '127.0.0.1')
const port = Number(arg('port', '0'))
const statsEvery = Number(arg('stats', '0'))
const maxSeconds = Number(arg('max-seconds', '300'))
const bootstrap = (arg('bootstrap', '') || '').split(',').filter(Boolean)
const announces = (arg('announce', '') || '').split(',').filter(Boolean).map((s) => {
  const [ih, p] = s.split(':')
  return { ih, port: Number(p || '0') }
})
if (!isLoopback(host)) { console.error('non-loopback host refused'); process.exit(2) }
for (const b of bootstrap) {
  if (!isLoopback(b.slice(0, b.lastIndexOf(':')))) { console.error('non-loopback bootstrap refused: ' + b); process.exit(2) }
}

const modDir = path.join(peersDir, 'js', 'node_modules', 'bittorrent-dht')
const version = JSON.parse(fs.readFileSync(path.join(modDir, 'package.json'))).version
const { default: DHT } = await import(url.pathToFileURL(path.join(modDir, 'index.js')).href)

const t0 = Date.now()
// bootstrap: an explicit list, never k-rpc's public default routers; host: false, so the
// node does not add itself as a peer (the announce must reach other nodes to be found).
const dht = new DHT({ bootstrap, host: false })
dht.on('error', (e) => { console.error('dht error', e); process.exit(1) })
dht.on('warning', (e) => { console.error('dht warning', e && e.message) })

dht.on('ready', () => {
  console.log(`READY nodes=${dht.nodes.count()}`)
  let pending = announces.length
  for (const a of announces) {
    dht.announce(a.ih, a.port, (err, n) => {
      console.log(`ANNOUNCED infohash=${a.ih} port=${a.port} responses=${n} err=${err ? err.message : ''}`)
      if (--pending === 0) lookups()
    })
  }
})

function lookups () {
  for (const a of announces) {
    dht.lookup(a.ih, (err) => {
      console.log(`LOOKUP-DONE infohash=${a.ih} err=${err ? err.message : ''}`)
    })
  }
}

dht.on('peer', (peer, infoHash, from) => {
  const f = from ? `${from.address || from.host}:${from.port}` : 'local'
  console.log(`FOUND infohash=${infoHash.toString('hex')} peer=${peer.host}:${peer.port} from=${f}`)
})

dht.listen(port, host, () => {
  const a = dht.address()
  console.log(`LISTENING impl=bittorrent-dht-client version=${version} addr=${a.address}:${a.port} id=${dht.nodeId.toString('hex')} pid=${process.pid}`)
})

let statsTimer = null
if (statsEvery > 0) {
  statsTimer = setInterval(() => {
    console.log(`STATS t=${((Date.now() - t0) / 1000).toFixed(2)} nodes=${dht.nodes.count()}`)
  }, statsEvery * 1000)
}

function stop () {
  if (statsTimer) clearInterval(statsTimer)
  console.log(`STOPPING impl=bittorrent-dht-client pid=${process.pid}`)
  dht.destroy(() => process.exit(0))
  setTimeout(() => process.exit(0), 2000).unref()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
setTimeout(stop, maxSeconds * 1000).unref()
