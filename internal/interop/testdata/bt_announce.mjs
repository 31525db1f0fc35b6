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
import { arg, options, load, serve } from './bt_common.mjs'

const o = options()
const announces = (arg('announce', '') || '').split(',').filter(Boolean).map((s) => {
  const [ih, p] = s.split(':')
  return { ih, port: Number(p || '0') }
})
const { DHT, version } = await load(o)

// bootstrap: an explicit list, never k-rpc's public default routers; host: false, so the
// node does not add itself as a peer (the announce must reach other nodes to be found).
const dht = new DHT({ bootstrap: o.bootstrap, host: false })
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

serve(dht, o, 'bittorrent-dht-client', version)
