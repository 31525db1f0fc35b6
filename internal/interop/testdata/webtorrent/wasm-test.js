'use strict'
// Runs a Go test binary built for GOOS=js GOARCH=wasm (go test -c) in headless Chromium,
// for internal/interop/webtorrent's TestWasmConformance:
//
//   node wasm-test.js --playwright DIR --wasm FILE --exec wasm_exec.js [--timeout S] [-- ARGS...]
//
// It serves a blank page, the Go installation's wasm_exec.js and the binary on 127.0.0.1,
// launches Chromium with the flags of chromium.js (and a getUserMedia stream, without
// which it gathers no host candidate in a lo-only namespace), runs the binary with ARGS
// (e.g. -test.v) and prints the LISTENING line of internal/interop, the binary's output
// (one line each) and "EXIT <status>" when it exits, then exits itself (status 0), or
// "TIMEOUT wasm-test" at the timeout (status 1).
const http = require('http')
const fs = require('fs')
const path = require('path')

const argv = process.argv.slice(2)
const dd = argv.indexOf('--')
const opts = dd >= 0 ? argv.slice(0, dd) : argv
const args = dd >= 0 ? argv.slice(dd + 1) : []
const arg = (n, d) => { const i = opts.indexOf('--' + n); return i >= 0 ? opts[i + 1] : d }
const { chromium } = require(path.join(path.resolve(arg('playwright')), 'node_modules', 'playwright-core'))
const files = {
  '/wasm_exec.js': [path.resolve(arg('exec')), 'application/javascript'],
  '/test.wasm': [path.resolve(arg('wasm')), 'application/wasm']
}
const timeout = Number(arg('timeout', '170'))

const server = http.createServer((req, res) => {
  if (req.url === '/') { res.writeHead(200, { 'Content-Type': 'text/html' }); return res.end('<!doctype html><meta charset="utf-8"><title>wasm test</title><script src="/wasm_exec.js"></script>') }
  const f = files[req.url]
  if (!f) { res.writeHead(404); return res.end() }
  res.writeHead(200, { 'Content-Type': f[1] })
  fs.createReadStream(f[0]).pipe(res)
})

let browser = null
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
  const ctx = await browser.newContext()
  await ctx.grantPermissions(['microphone'])
  const p = await ctx.newPage()
  p.on('console', (m) => console.log(m.text()))
  p.on('pageerror', (e) => console.log('[pageerror] ' + e.message))
  console.log(`LISTENING impl=chromium version=${browser.version()} addr=127.0.0.1:0 pid=${process.pid}`)
  await p.goto(`http://127.0.0.1:${server.address().port}/`)
  const code = await p.evaluate(async (args) => {
    window.__gum = await navigator.mediaDevices.getUserMedia({ audio: true })
    const go = new Go() // eslint-disable-line no-undef
    window.__go = go // referenced: Chromium collects a pending promise that nothing reaches
    go.argv = ['test.wasm'].concat(args)
    const exited = new Promise((resolve) => { go.exit = resolve })
    const { instance } = await WebAssembly.instantiateStreaming(fetch('/test.wasm'), go.importObject)
    go.run(instance)
    return exited
  }, args)
  console.log('EXIT ' + code)
  await cleanup(0)
}

async function cleanup (code) {
  try { if (browser) await browser.close() } catch (e) {}
  try { server.close() } catch (e) {}
  process.exit(code)
}
setTimeout(() => { console.log('TIMEOUT wasm-test'); cleanup(1) }, timeout * 1000)
main().catch((e) => { console.log('ERROR wasm-test ' + String(e && e.stack).replace(/\n/g, ' | ')); cleanup(1) })
process.on('SIGTERM', () => cleanup(0))
process.on('SIGINT', () => cleanup(0))
