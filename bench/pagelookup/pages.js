'use strict'
// The browser side of bench/pagelookup: headless Chromium (Debian's, driven by
// playwright-core from the shared harness, with the flags of
// internal/interop/testdata/webtorrent/chromium.js) loads, run after run, in a fresh
// browser context each time (empty cache, a new node):
//
//   ours: the demo page of a 'wdht node' (the wdht node compiled to WebAssembly), which
//         joins through that node's signalling server (the page's own host);
//   js:   a page with the published webtorrent-dht browser bundle, served here on
//         127.0.0.1, whose DHT bootstraps from the same signalling server.
//
// Each page then looks up the same infohash (get_peers, up to 3 times while it finds
// nothing), then pings the first peer found to learn its node ID. Times are the page's
// performance.now() (milliseconds since the navigation started): "loaded" when the node
// can be started (ours: the wasm node instantiated and running; js: the bundle's script
// run), "joined" when the bootstrap is done (ours: start() resolved; js: "ready"),
// "first" when the first peer of the infohash arrived; ours adds "fetch" (wdht.js starts
// fetching the wasm) and "instantiated" (the module downloaded and compiled), from the
// performance marks wdht.js leaves.
//
//   node pages.js --playwright DIR --bundle FILE --ours URL --bootstrap H:P --ih HEX
//        [--runs N] [--run-timeout S] [--timeout S]
//
// Prints the LISTENING line of internal/interop, then one line per run,
//   RESULT <kind> <run> {"loaded":..,"joined":..,"first":..,"peer":"ip:port","id":HEX,...}
// (or {"error":"..."}), the kinds alternating (ours first in even runs, js first in odd
// ones), then DONE; a page load without a result in --run-timeout seconds (default 90) is
// a failed run. It exits when done, on SIGTERM, or at --timeout (status 1).
const http = require('http')
const fs = require('fs')
const path = require('path')

const argv = process.argv.slice(2)
const arg = (n, d) => { const i = argv.indexOf('--' + n); return i >= 0 ? argv[i + 1] : d }
const { chromium } = require(path.join(path.resolve(arg('playwright')), 'node_modules', 'playwright-core'))
const bundle = path.resolve(arg('bundle'))
const oursURL = arg('ours')
const bootstrap = arg('bootstrap')
const ih = arg('ih')
const runs = Number(arg('runs', '5'))
const timeout = Number(arg('timeout', '600'))
const perRun = Number(arg('run-timeout', '90'))

const jsPage = `<!doctype html><meta charset="utf-8"><title>webtorrent-dht</title>
<script src="/bundle.js"></script>`

const server = http.createServer((req, res) => {
  if (req.url === '/') { res.writeHead(200, { 'Content-Type': 'text/html' }); return res.end(jsPage) }
  if (req.url === '/bundle.js') { res.writeHead(200, { 'Content-Type': 'application/javascript' }); return fs.createReadStream(bundle).pipe(res) }
  res.writeHead(404); res.end()
})

// In the page: ours.
async function runOurs (o) {
  window.__gum = await navigator.mediaDevices.getUserMedia({ audio: true })
  while (window.demoReady !== true) await new Promise((resolve) => setTimeout(resolve, 1))
  const r = { loaded: performance.now() }
  const mark = (n) => { const e = performance.getEntriesByName(n)[0]; return e ? e.startTime : null }
  r.fetch = mark('wdht:fetch')
  r.instantiated = mark('wdht:instantiated')
  await window.demo.join()
  r.joined = performance.now()
  const node = window.wdhtNode
  for (let i = 0; i < 3 && !r.peer; i++) {
    await node.lookup(o.ih, (p) => { if (!r.peer) { r.first = performance.now(); r.peer = p } })
  }
  if (!r.peer) throw new Error('no peer found in 3 lookups')
  let err = null
  for (let i = 0; i < 2 && !r.id; i++) {
    try { r.id = (await node.ping(r.peer)).id } catch (e) { err = e }
  }
  if (!r.id) r.ping_error = String(err && (err.message || err))
  await window.demo.leave()
  return r
}

// In the page: the JS bundle, as internal/interop/testdata/webtorrent/browser-dht.js
// runs it.
async function runJS (o) {
  window.__gum = await navigator.mediaDevices.getUserMedia({ audio: true })
  const hex = (b) => Array.from(b || [], (x) => x.toString(16).padStart(2, '0')).join('')
  const r = { loaded: performance.now() }
  const [host, port] = [o.bootstrap.slice(0, o.bootstrap.lastIndexOf(':')), Number(o.bootstrap.slice(o.bootstrap.lastIndexOf(':') + 1))]
  const dht = new webtorrent_dht({ nodes: [{ host, port }], simple_peer_opts: { config: { iceServers: [] } } }) // eslint-disable-line new-cap, no-undef
  window.dht = dht // referenced: Chromium collects a pending promise that nothing reaches
  dht._rpc.socket.socket.on('error', () => {})
  dht.on('error', (e) => console.log('ERROR js ' + (e && (e.message || e))))
  await new Promise((resolve) => dht.once('ready', resolve))
  r.joined = performance.now()
  let peer = null
  dht.on('peer', (p, infoHash) => {
    if (!peer && hex(infoHash) === o.ih) { r.first = performance.now(); peer = p; r.peer = p.host + ':' + p.port }
  })
  for (let i = 0; i < 3 && !peer; i++) {
    await new Promise((resolve) => dht.lookup(o.ih, resolve))
  }
  if (!peer) throw new Error('no peer found in 3 lookups')
  // A new connection drops what reaches it before its own side reports it
  // (js-wire-protocol §11 B4): wait half a second before the ping, and retry.
  for (let i = 0; i < 3 && !r.id; i++) {
    await new Promise((resolve) => setTimeout(resolve, 500))
    r.id = await new Promise((resolve) => dht._rpc.query(peer, { q: 'ping', a: {} }, (err, res) => {
      if (err) { r.ping_error = String(err.message || err); resolve(null) } else resolve(hex(res && res.r && res.r.id))
    }))
  }
  if (r.id) delete r.ping_error
  dht.destroy() // its callback does not always come; the context closes next anyway
  return r
}

let browser = null
async function once (kind) {
  const ctx = await browser.newContext()
  try {
    await ctx.grantPermissions(['microphone'])
    const p = await ctx.newPage()
    p.on('pageerror', (e) => console.log('[pageerror ' + kind + '] ' + e.message))
    p.on('console', (m) => { if (m.text().startsWith('ERROR')) console.log(m.text()) })
    let timer
    const late = new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error('no result in ' + perRun + ' s')), perRun * 1000) })
    const go = async () => {
      if (kind === 'ours') {
        await p.goto(oursURL, { waitUntil: 'domcontentloaded' })
        return p.evaluate(runOurs, { ih })
      }
      await p.goto(`http://127.0.0.1:${server.address().port}/`, { waitUntil: 'domcontentloaded' })
      return p.evaluate(runJS, { ih, bootstrap })
    }
    try { return await Promise.race([go(), late]) } finally { clearTimeout(timer) }
  } finally {
    await ctx.close()
  }
}

async function main () {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--allow-loopback-in-peer-connection', '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream', '--disable-features=WebRtcHideLocalIpsWithMdns']
  })
  console.log(`LISTENING impl=chromium version=${browser.version()} addr=127.0.0.1:0 pid=${process.pid}`)
  for (let run = 0; run < runs; run++) {
    const kinds = run % 2 === 0 ? ['ours', 'js'] : ['js', 'ours']
    for (const kind of kinds) {
      let r
      try { r = await once(kind) } catch (e) { r = { error: String(e && e.message).split('\n')[0] } }
      for (const k of ['fetch', 'instantiated', 'loaded', 'joined', 'first']) if (typeof r[k] === 'number') r[k] = Math.round(r[k])
      console.log('RESULT ' + kind + ' ' + run + ' ' + JSON.stringify(r))
    }
  }
  console.log('DONE')
  await cleanup(0)
}

async function cleanup (code) {
  try { if (browser) await browser.close() } catch (e) {}
  try { server.close() } catch (e) {}
  process.exit(code)
}
setTimeout(() => { console.log('TIMEOUT pages'); cleanup(1) }, timeout * 1000)
main().catch((e) => { console.log('ERROR pages ' + String(e && e.stack).replace(/\n/g, ' | ')); cleanup(1) })
process.on('SIGTERM', () => cleanup(0))
process.on('SIGINT', () => cleanup(0))
