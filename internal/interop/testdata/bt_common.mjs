// What both bittorrent-dht driver scripts share (bt_announce.mjs, bt_item.mjs): their
// command line (--peers-dir, --host, --port, --bootstrap, --stats, --max-seconds, all
// loopback only), loading the unmodified library the harness installed
// (<peers-dir>/js/node_modules), and a node's life: LISTENING, STATS, STOPPING.
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import url from 'node:url'

export function arg (name, def) {
  const i = process.argv.indexOf('--' + name)
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def
}

export function args (name) {
  const out = []
  for (let i = 0; i + 1 < process.argv.length; i++) {
    if (process.argv[i] === '--' + name) out.push(process.argv[i + 1])
  }
  return out
}

function isLoopback (h) {
  return net.isIPv4(h) ? h.startsWith('127.') : h === '::1'
}

// options parses the common flags and exits with status 2 on a missing --peers-dir or a
// non-loopback address.
export function options () {
  const o = {
    peersDir: arg('peers-dir'),
    host: arg('host', '127.0.0.1'),
    port: Number(arg('port', '0')),
    statsEvery: Number(arg('stats', '0')),
    maxSeconds: Number(arg('max-seconds', '300')),
    bootstrap: (arg('bootstrap', '') || '').split(',').filter(Boolean)
  }
  if (!o.peersDir) { console.error('--peers-dir is required'); process.exit(2) }
  if (!isLoopback(o.host)) { console.error('non-loopback host refused'); process.exit(2) }
  for (const b of o.bootstrap) {
    if (!isLoopback(b.slice(0, b.lastIndexOf(':')))) { console.error('non-loopback bootstrap refused: ' + b); process.exit(2) }
  }
  o.modules = path.join(o.peersDir, 'js', 'node_modules')
  return o
}

// load imports bittorrent-dht from the harness and returns its DHT class and version.
export async function load (o) {
  const modDir = path.join(o.modules, 'bittorrent-dht')
  const version = JSON.parse(fs.readFileSync(path.join(modDir, 'package.json'))).version
  const { default: DHT } = await import(url.pathToFileURL(path.join(modDir, 'index.js')).href)
  return { DHT, version }
}

// serve makes dht listen on --host/--port and print the LISTENING line as impl, STATS
// lines every --stats seconds, and STOPPING when it stops: on SIGTERM/SIGINT or after
// --max-seconds.
export function serve (dht, o, impl, version) {
  const t0 = Date.now()
  dht.listen(o.port, o.host, () => {
    const a = dht.address()
    console.log(`LISTENING impl=${impl} version=${version} addr=${a.address}:${a.port} id=${dht.nodeId.toString('hex')} pid=${process.pid}`)
  })
  let statsTimer = null
  if (o.statsEvery > 0) {
    statsTimer = setInterval(() => {
      console.log(`STATS t=${((Date.now() - t0) / 1000).toFixed(2)} nodes=${dht.nodes.count()}`)
    }, o.statsEvery * 1000)
  }
  function stop () {
    if (statsTimer) clearInterval(statsTimer)
    console.log(`STOPPING impl=${impl} pid=${process.pid}`)
    dht.destroy(() => process.exit(0))
    setTimeout(() => process.exit(0), 2000).unref()
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  setTimeout(stop, o.maxSeconds * 1000).unref()
}
