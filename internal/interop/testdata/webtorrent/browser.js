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
const http = require('http')
const fs = require('fs')
const os = require('os')
const path = require('path')

const argv = process.argv.slice(2)
const arg = (n, d) => { const i = argv.indexOf('--' + n); return i >= 0 ? argv[i + 1] : d }
const { chromium } = require(path.join(path.resolve(arg('playwright')), 'node_modules', 'playwright-core'))
const bundle = path.resolve(arg('bundle'))
const overall = Number(arg('timeout', '60'))
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

const server = http.createServer((req, res) => {
  if (req.url === '/') { res.writeHead(200, { 'Content-Type': 'text/html' }); return res.end(page) }
  if (req.url === '/bundle.js') { res.writeHead(200, { 'Content-Type': 'application/javascript' }); return fs.createReadStream(bundle).pipe(res) }
  res.writeHead(404); res.end()
})

let ctx = null
let userDataDir = null
async function main () {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wdht-chromium-'))
  ctx = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // As the shared harness's browser-client.js: without an active getUserMedia stream
    // Chromium gathers no host candidate in a lo-only namespace; loopback candidates
    // need --allow-loopback-in-peer-connection; mDNS hiding off so that candidates are
    // 127.0.0.1 (the transport resolves .local names, but a lo-only namespace has no
    // multicast).
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--allow-loopback-in-peer-connection', '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream', '--disable-features=WebRtcHideLocalIpsWithMdns']
  })
  console.log(`LISTENING impl=chromium version=${ctx.browser() ? ctx.browser().version() : 'unknown'} addr=127.0.0.1:0 pid=${process.pid}`)
  const p = ctx.pages()[0] || await ctx.newPage()
  p.on('console', (m) => console.log(m.text()))
  p.on('pageerror', (e) => console.log('[pageerror] ' + e.message))
  await p.goto(`http://127.0.0.1:${server.address().port}/`)
  console.log('BROWSER ' + await p.evaluate(() => navigator.userAgent))
  await p.evaluate(async () => { window.__gum = await navigator.mediaDevices.getUserMedia({ audio: true }) })
  const lines = await p.evaluate((b) => window.runPing(b), { host: bhost, port: bport })
  for (const l of lines) console.log(l)
  // Stay up (the connections too) until SIGTERM or --timeout.
  await new Promise(() => {})
}

async function cleanup (code) {
  try { if (ctx) await ctx.close() } catch (e) {}
  try { server.close() } catch (e) {}
  try { if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true }) } catch (e) {}
  process.exit(code)
}
const hard = setTimeout(() => { console.log('RESULT ping error timeout'); cleanup(1) }, overall * 1000)
main().catch((e) => { console.log('RESULT ping error ' + String(e && e.stack).replace(/\n/g, ' | ')); clearTimeout(hard); cleanup(1) })
process.on('SIGTERM', () => cleanup(0))
process.on('SIGINT', () => cleanup(0))
