'use strict'
// Headless Chromium on the demo page of a 'wdht node' (the wdht node compiled to
// WebAssembly, cmd/wdht-wasm), for internal/interop/webtorrent's wasm tests:
//
//   node wasm-page.js --playwright DIR --url http://H:P/ [--pages N] [--timeout S]
//
// It opens N pages (each in its own browser context) on the URL, prints the LISTENING
// line of internal/interop, then takes one JSON command a line on stdin, for page P
// (default 0) and with a number "seq" N, and prints one line per command,
// "RESULT <cmd> p<P> #<N> <json>" (or "RESULT <cmd> p<P> #<N> {"error":"..."}"):
//
//   {"cmd":"join"}                       window.demo.join(): {"id":..., "ms": page load to joined}
//   {"cmd":"announce","ih":HEX}          demo.announce
//   {"cmd":"lookup","ih":HEX}            demo.lookup, plus "first_ms": page load to the first peer
//   {"cmd":"ping","addr":"IP:PORT"}     the node's ping: {"id":...}
//   {"cmd":"put","item":{...}}           demo.put
//   {"cmd":"get","target":HEX,"opts":{}} demo.get
//   {"cmd":"screenshot","path":FILE}     a PNG of the page
//   {"cmd":"reload"}                     reloads the page (a fresh node), "ms": load time
//
// The page's console is printed too. It stays up until SIGTERM or the timeout.
const fs = require('fs')
const os = require('os')
const path = require('path')
const readline = require('readline')

const argv = process.argv.slice(2)
const arg = (n, d) => { const i = argv.indexOf('--' + n); return i >= 0 ? argv[i + 1] : d }
const { chromium } = require(path.join(path.resolve(arg('playwright')), 'node_modules', 'playwright-core'))
const url = arg('url')
const npages = Number(arg('pages', '1'))
const timeout = Number(arg('timeout', '170'))

let browser = null
const pages = []

async function open (i) {
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 900 } })
  await ctx.grantPermissions(['microphone'])
  const p = await ctx.newPage()
  p.on('console', (m) => { if (!m.text().startsWith('20')) console.log('p' + i + ' ' + m.text()) })
  p.on('pageerror', (e) => console.log('p' + i + ' [pageerror] ' + e.message))
  await load(p)
  return p
}

// load opens the page and waits for the wasm node to be loaded; a getUserMedia stream
// makes Chromium gather host candidates in a lo-only namespace (see chromium.js).
async function load (p) {
  await p.goto(url)
  await p.evaluate(async () => { window.__gum = await navigator.mediaDevices.getUserMedia({ audio: true }) })
  await p.waitForFunction(() => window.demoReady === true, null, { timeout: 60000 })
}

async function run (c) {
  const p = pages[c.page || 0]
  switch (c.cmd) {
    case 'join': return p.evaluate(async () => { const r = await window.demo.join(); r.ms = Math.round(performance.now()); return r })
    case 'announce': return p.evaluate((ih) => window.demo.announce(ih), c.ih)
    case 'lookup': return p.evaluate(async (ih) => {
      let first = null
      window.wdht.on('peer', function f (e) { if (e.infohash === ih && first === null) first = Math.round(performance.now()) })
      const r = await window.demo.lookup(ih)
      r.first_ms = first
      return r
    }, c.ih)
    case 'ping': return p.evaluate((a) => window.wdhtNode.ping(a), c.addr)
    case 'put': return p.evaluate((item) => window.demo.put(item), c.item)
    case 'get': return p.evaluate(([t, o]) => window.demo.get(t, o), [c.target, c.opts || {}])
    case 'screenshot': await p.screenshot({ path: c.path, fullPage: true }); return { path: c.path }
    case 'reload': { const t0 = Date.now(); await load(p); return { ms: Date.now() - t0 } }
  }
  throw new Error('unknown command ' + c.cmd)
}

async function main () {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--allow-loopback-in-peer-connection', '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream', '--disable-features=WebRtcHideLocalIpsWithMdns']
  })
  for (let i = 0; i < npages; i++) pages.push(await open(i))
  console.log(`LISTENING impl=chromium version=${browser.version()} addr=127.0.0.1:0 pid=${process.pid}`)
  const rl = readline.createInterface({ input: process.stdin })
  rl.on('line', async (line) => {
    let c
    try { c = JSON.parse(line) } catch (e) { console.log('RESULT bad p0 ' + JSON.stringify({ error: e.message })); return }
    const tag = 'RESULT ' + c.cmd + ' p' + (c.page || 0) + ' #' + (c.seq || 0) + ' '
    try { console.log(tag + JSON.stringify(await run(c))) } catch (e) { console.log(tag + JSON.stringify({ error: String(e && e.message) })) }
  })
}

async function cleanup (code) {
  try { if (browser) await browser.close() } catch (e) {}
  process.exit(code)
}
setTimeout(() => { console.log('TIMEOUT wasm-page'); cleanup(1) }, timeout * 1000)
main().catch((e) => { console.log('ERROR wasm-page ' + String(e && e.stack).replace(/\n/g, ' | ')); cleanup(1) })
process.on('SIGTERM', () => cleanup(0))
process.on('SIGINT', () => cleanup(0))
