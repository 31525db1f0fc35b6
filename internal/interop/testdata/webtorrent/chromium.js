'use strict'
// Runs a page in headless Chromium for browser.js and browser-dht.js: serves the page and
// the bundle under test on 127.0.0.1, launches /usr/bin/chromium (or $CHROMIUM) with
// playwright-core from the shared harness and the flags its browser-client.js uses,
// prints the LISTENING line of internal/interop and the page's console, grants the fake
// getUserMedia stream, then calls drive(page). It stays up (the connections too) until
// SIGTERM or SIGINT (exit status 0) or the timeout (timeoutLine printed, status 1); a
// failure prints errorPrefix and the stack (status 1).
const http = require('http')
const fs = require('fs')
const os = require('os')
const path = require('path')

module.exports = function runInChromium ({ playwright, bundle, html, timeout, timeoutLine, errorPrefix, drive, loopback = true }) {
  const { chromium } = require(path.join(path.resolve(playwright), 'node_modules', 'playwright-core'))
  const server = http.createServer((req, res) => {
    if (req.url === '/') { res.writeHead(200, { 'Content-Type': 'text/html' }); return res.end(html) }
    if (req.url === '/bundle.js') { res.writeHead(200, { 'Content-Type': 'application/javascript' }); return fs.createReadStream(path.resolve(bundle)).pipe(res) }
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
      // With loopback false (a page in a namespace with a route out, using a STUN
      // server) no loopback candidate: Chromium would send STUN from it too, get no
      // answer, and end its gathering only after the STUN timeout (about 40 s), which
      // simple-peer 9.1.1 waits for before it signals.
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        ...(loopback ? ['--allow-loopback-in-peer-connection'] : []), '--use-fake-ui-for-media-stream',
        '--use-fake-device-for-media-stream', '--disable-features=WebRtcHideLocalIpsWithMdns']
    })
    console.log(`LISTENING impl=chromium version=${ctx.browser() ? ctx.browser().version() : 'unknown'} addr=127.0.0.1:0 pid=${process.pid}`)
    const p = ctx.pages()[0] || await ctx.newPage()
    p.on('console', (m) => console.log(m.text()))
    p.on('pageerror', (e) => console.log('[pageerror] ' + e.message))
    await p.goto(`http://127.0.0.1:${server.address().port}/`)
    console.log('BROWSER ' + await p.evaluate(() => navigator.userAgent))
    await p.evaluate(async () => { window.__gum = await navigator.mediaDevices.getUserMedia({ audio: true }) })
    await drive(p)
    await new Promise(() => {})
  }

  // Once a signal asked us to stop, closing the context makes a page call still in
  // progress fail; that is not the run's failure, and the exit status stays 0.
  let stopping = false
  async function cleanup (code) {
    if (stopping) return
    stopping = true
    try { if (ctx) await ctx.close() } catch (e) {}
    try { server.close() } catch (e) {}
    try { if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true }) } catch (e) {}
    process.exit(code)
  }
  const hard = setTimeout(() => { console.log(timeoutLine); cleanup(1) }, timeout * 1000)
  main().catch((e) => {
    if (stopping) return
    console.log(errorPrefix + String(e && e.stack).replace(/\n/g, ' | ')); clearTimeout(hard); cleanup(1)
  })
  process.on('SIGTERM', () => cleanup(0))
  process.on('SIGINT', () => cleanup(0))
}
