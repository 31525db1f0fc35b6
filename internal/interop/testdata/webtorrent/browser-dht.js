'use strict'
// Headless Chromium running the published webtorrent-dht browser bundle as a DHT node, for
// wdht's WebRTC interop tests (internal/interop/webtorrent). Like browser.js (both run
// Chromium through chromium.js), but the page runs DHT steps:
//
//   node browser-dht.js --playwright DIR --bundle FILE --bootstrap H:P
//        [--announce IH] [--lookup IH] [--get TARGET [--salt SALT]] [--trace] [--timeout S]
//        [--ice-server URL]... [--no-loopback]
//
// --ice-server (repeatable) sets the page's ICE servers through the library's documented
// option, simple_peer_opts.config.iceServers ([{urls: URL}]); the default is none (the
// demos' iceServers: []), which the loopback tests use. --no-loopback starts Chromium
// without --allow-loopback-in-peer-connection (see chromium.js), for a page behind a NAT
// of internal/netlab.
//
// The page's node bootstraps from H:P (find_node), then announces IH (implied_port), then
// looks up IH (get_peers) and pings every peer found to learn its node ID, then gets the
// BEP 44 item TARGET with dht.get (salt SALT, a UTF-8 string). The bundle has no ed25519,
// and dht.get's verify must answer at once: the page accepts every signature there and
// checks the one of the item dht.get returns afterwards with WebCrypto's Ed25519, printing
// RESULT get b target=T found=true seq=N v=HEX k=HEX verified=true|false ms=M (or
// found=false, or error=...). --trace prints a TRACE line for every response to the
// queries of that get. Output: the
// LISTENING line of internal/interop, then the page's lines, in dht.js's formats with the
// node name "b": NODE b id=..., READY b ..., RESULT announce b ..., RESULT peer b ...,
// RESULT peerid b ..., RESULT lookup b ... . It then stays up until SIGTERM (exit status
// 0) or --timeout (1).
const runInChromium = require('./chromium')

const argv = process.argv.slice(2)
const arg = (n, d) => { const i = argv.indexOf('--' + n); return i >= 0 ? argv[i + 1] : d }
const [bhost, bport] = (() => { const b = arg('bootstrap'); const i = b.lastIndexOf(':'); return [b.slice(0, i), Number(b.slice(i + 1))] })()

const page = `<!doctype html><meta charset="utf-8"><title>wdht interop</title>
<script src="/bundle.js"></script>
<script>
window.runDHT = async function (opts) {
  const out = (s) => console.log(s)
  const hex = (b) => Array.from(b || [], (x) => x.toString(16).padStart(2, '0')).join('')
  const made = Date.now()
  const dht = new webtorrent_dht({ nodes: [opts.bootstrap], simple_peer_opts: { config: { iceServers: opts.iceServers } } })
  window.dht = dht
  dht._rpc.socket.socket.on('error', () => {})
  dht.on('error', (e) => out('ERROR b ' + (e && (e.message || e))))
  out('NODE b id=' + hex(dht.nodeId) + ' listen=0')
  await new Promise((resolve) => dht.once('ready', resolve))
  const table = () => JSON.stringify(dht.nodes.toArray().map((n) => ({ id: hex(n.id), addr: n.host + ':' + n.port })))
  out('READY b ms=' + (Date.now() - made) + ' table=' + table())
  if (opts.announce) {
    const t0 = Date.now()
    await new Promise((resolve) => dht.announce(opts.announce, (err, n) => {
      out('RESULT announce b ih=' + opts.announce + ' ' + (err ? 'error=' + JSON.stringify(err.message || String(err)) : 'ok') + ' n=' + n + ' ms=' + (Date.now() - t0))
      resolve()
    }))
  }
  if (opts.lookup) {
    const ih = opts.lookup
    const t0 = Date.now()
    const found = new Map()
    // A new connection drops what reaches it before its own side reports it (§11 B4):
    // wait half a second before the ping, and send it twice if need be.
    const ping = (peer, tries) => new Promise((resolve) => setTimeout(resolve, 500)).then(() => new Promise((resolve) =>
      dht._rpc.query(peer, { q: 'ping', a: {} }, (err, res) => {
        if (err) resolve(tries > 1 ? ping(peer, tries - 1) : { error: err.message || String(err) })
        else resolve({ id: hex(res && res.r && res.r.id) })
      })))
    dht.on('peer', (peer, infoHash) => {
      if (hex(infoHash) !== ih) return
      const addr = peer.host + ':' + peer.port
      if (found.has(addr)) return
      if (found.size === 0) out('RESULT peer b ih=' + ih + ' addr=' + addr + ' ms=' + (Date.now() - t0) + ' since_start=' + (Date.now() - made))
      found.set(addr, ping(peer, 2).then((r) => {
        out('RESULT peerid b ih=' + ih + ' addr=' + addr + ' ' + (r.error ? 'error=' + JSON.stringify(r.error) : 'id=' + r.id))
        return r.id
      }))
    })
    let r = null
    for (let i = 0; i < 3 && found.size === 0; i++) {
      r = await new Promise((resolve) => dht.lookup(ih, (err, visited) => resolve({ err, visited })))
    }
    const ids = (await Promise.all(found.values())).filter(Boolean)
    out('RESULT lookup b ih=' + ih + ' peers=' + found.size + ' ids=' + JSON.stringify(ids) + ' ms=' + (Date.now() - t0) + ' visited=' + (r.visited || 0))
  }
  if (opts.get) {
    const t0 = Date.now()
    const signed = new Map() // sig hex -> the message dht.get had verified
    const verify = (sig, msg, k) => { signed.set(hex(sig), msg); return true }
    if (opts.trace) {
      const sock = dht._rpc.socket
      const q = sock.query.bind(sock)
      sock.query = (peer, msg, cb) => q(peer, msg, (err, res, p) => {
        const r = res && res.r
        out('TRACE ' + msg.q + ' to ' + peer.host + ':' + peer.port + ' err=' + (err && (err.message || err)) +
          ' keys=' + (r ? Object.keys(r).join(',') : '-') + ' e=' + JSON.stringify(res && res.e && String(res.e)))
        cb(err, res, p)
      })
    }
    let item = null
    let err = null
    for (let i = 0; i < 3 && !item; i++) {
      item = await new Promise((resolve) => dht.get(opts.get, { salt: opts.salt, verify, cache: false }, (e, v) => { err = e; resolve(v || null) }))
    }
    if (!item) {
      out('RESULT get b target=' + opts.get + ' found=false' + (err ? ' error=' + JSON.stringify(err.message || String(err)) : '') + ' ms=' + (Date.now() - t0))
    } else {
      let verified = false
      let why = ''
      try {
        const msg = signed.get(hex(item.sig))
        const key = await crypto.subtle.importKey('raw', new Uint8Array(item.k), { name: 'Ed25519' }, false, ['verify'])
        verified = !!msg && await crypto.subtle.verify({ name: 'Ed25519' }, key, new Uint8Array(item.sig), new Uint8Array(msg))
      } catch (e) { why = ' verify_error=' + JSON.stringify(e.message || String(e)) }
      out('RESULT get b target=' + opts.get + ' found=true seq=' + item.seq + ' v=' + hex(item.v) + ' k=' + hex(item.k) +
        ' verified=' + verified + why + ' ms=' + (Date.now() - t0))
    }
  }
  out('RESULT table b ' + table())
}
</script>`

runInChromium({
  playwright: arg('playwright'),
  bundle: arg('bundle'),
  html: page,
  timeout: Number(arg('timeout', '60')),
  timeoutLine: 'RESULT timeout b',
  errorPrefix: 'ERROR b ',
  loopback: !argv.includes('--no-loopback'),
  drive: (p) => p.evaluate((o) => window.runDHT(o), {
    bootstrap: { host: bhost, port: bport }, announce: arg('announce'), lookup: arg('lookup'),
    get: arg('get'), salt: arg('salt'), trace: argv.includes('--trace'),
    iceServers: argv.flatMap((a, i) => a === '--ice-server' ? [{ urls: argv[i + 1] }] : [])
  })
})
