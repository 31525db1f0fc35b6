'use strict'
// Headless Chromium running a published webtorrent-dht browser bundle, for wdht's WebRTC
// interop tests (internal/interop/webtorrent). Drives /usr/bin/chromium (or $CHROMIUM)
// with playwright-core from the shared harness, like its browser-client.js, but runs its
// own page: bootstrap from --bootstrap, then ping it through the bootstrap connection.
//
//   node browser.js --playwright DIR --bundle FILE --bootstrap H:P [--timeout S]
//
// DIR holds node_modules/playwright-core; FILE is dist/webtorrent-dht.browser.js of the
// version under test (global webtorrent_dht). Output: the LISTENING line of
// internal/interop (addr 127.0.0.1:0), the page's log lines, READY, RESULT ping ok|error,
// RESULT servers [...]. It then stays up until SIGTERM (exit status 0) or --timeout (1).
const runInChromium = require('./chromium')

const argv = process.argv.slice(2)
const arg = (n, d) => { const i = argv.indexOf('--' + n); return i >= 0 ? argv[i + 1] : d }
const [bhost, bport] = (() => { const b = arg('bootstrap'); const i = b.lastIndexOf(':'); return [b.slice(0, i), Number(b.slice(i + 1))] })()

const page = `<!doctype html><meta charset="utf-8"><title>wdht interop</title>
<script src="/bundle.js"></script>
<script>
window.runPing = function (bootstrap) {
  return new Promise((resolve) => {
    const log = (s) => console.log('[page] ' + s)
    const hex = (b) => Array.from(b || [], (x) => x.toString(16).padStart(2, '0')).join('')
    const dht = new webtorrent_dht({ nodes: [bootstrap], simple_peer_opts: { config: { iceServers: [] } } })
    window.dht = dht
    const sock = dht._rpc.socket.socket
    sock.on('error', (e) => log('socket error ' + (e && (e.message || e.type))))
    dht.on('error', (e) => log('error ' + (e && (e.message || e))))
    const servers = () => JSON.stringify(sock.known_http_servers ? sock.known_http_servers() : sock.known_ws_servers())
    log('node id ' + hex(dht.nodeId))
    dht.once('ready', () => {
      log('READY nodes ' + JSON.stringify(dht.nodes.toArray().map((n) => n.host + ':' + n.port)))
      const t0 = Date.now()
      dht._rpc.query(bootstrap, { q: 'ping', a: {} }, (err, res, peer) => {
        const r = err ? 'RESULT ping error ' + (err.message || err)
          : 'RESULT ping ok id=' + hex(res && res.r && res.r.id) + ' from=' + (peer && (peer.address || peer.host)) + ':' + (peer && peer.port) + ' rtt=' + (Date.now() - t0) + 'ms'
        resolve([r, 'RESULT servers ' + servers()])
      })
    })
  })
}
</script>`

runInChromium({
  playwright: arg('playwright'),
  bundle: arg('bundle'),
  html: page,
  timeout: Number(arg('timeout', '60')),
  timeoutLine: 'RESULT ping error timeout',
  errorPrefix: 'RESULT ping error ',
  drive: async (p) => {
    const lines = await p.evaluate((b) => window.runPing(b), { host: bhost, port: bport })
    for (const l of lines) console.log(l)
  }
})
