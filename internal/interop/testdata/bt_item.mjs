// bittorrent-dht (webtorrent, npm v11) as a BEP 44 DHT *client*: join a loopback network
// through --bootstrap, then run the --op steps in order with the library's own dht.put and
// dht.get. The library is the unmodified one the harness installed
// (<peers-dir>/js/node_modules), configured like the harness's js/node.mjs (explicit
// bootstrap list, host: false, ed25519 verify through node:crypto).
//
// Usage: node bt_item.mjs --peers-dir DIR --bootstrap H:P[,H:P] [--seed HEX] --op STEP ...
//        [--host 127.0.0.1] [--port 0] [--stats S] [--max-seconds N]
// Steps (HEX is hex; the mutable key is the ed25519 key of the 32-byte --seed):
//   put-immutable:VHEX                     put the bencoded value VHEX
//   get-immutable:TARGET                   get it back (a lookup, never the local cache)
//   put-mutable:SALTHEX:SEQ:CAS:VHEX       put seq SEQ of the bencoded value VHEX under the
//                                          salt; CAS is a number or "-" (none)
//   get-mutable:PUBHEX:SALTHEX             get the mutable item of that key and salt
// Prints:
//   LISTENING impl=bittorrent-dht-item version=V addr=H:P id=HEX pid=PID
//   READY nodes=N
//   RESULT {"i": step index, "op": ..., "ok": ..., ...}   one JSON line per step
//   DONE
//   STATS t=S nodes=N                                       (with --stats)
// and keeps running (its DHT node answers queries) until SIGTERM/SIGINT or --max-seconds.
import crypto from 'node:crypto'
import path from 'node:path'
import url from 'node:url'
import { arg, args, options, load, serve } from './bt_common.mjs'

const o = options()
const ops = args('op')
const { DHT, version } = await load(o)
// The bencode bittorrent-dht itself uses (v4), for the values this script reads and writes.
const { default: bencode } = await import(url.pathToFileURL(path.join(o.modules, 'bencode', 'index.js')).href)

// ed25519 through node:crypto: raw 32-byte keys wrapped in DER (SPKI for the public key,
// PKCS#8 for the private key, built from the seed).
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
function verify (sig, msg, pubkey) {
  try {
    const key = crypto.createPublicKey({ key: Buffer.concat([SPKI_PREFIX, pubkey]), format: 'der', type: 'spki' })
    return crypto.verify(null, msg, key, sig)
  } catch (e) {
    return false
  }
}
let privateKey = null
let publicKey = null
const seed = arg('seed', '')
if (seed) {
  privateKey = crypto.createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, Buffer.from(seed, 'hex')]), format: 'der', type: 'pkcs8' })
  publicKey = crypto.createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length)
}

// bencode v4 decodes byte strings as Uint8Array; the KRPC layer (k-rpc-socket, bencode v2)
// wants Buffers.
function toBuffers (x) {
  if (x instanceof Uint8Array) return Buffer.from(x.buffer, x.byteOffset, x.byteLength)
  if (Array.isArray(x)) return x.map(toBuffers)
  if (x && typeof x === 'object') {
    const o = {}
    for (const k of Object.keys(x)) o[k] = toBuffers(x[k])
    return o
  }
  return x
}
const hex = (b) => b ? Buffer.from(b).toString('hex') : undefined
const decodeHex = (h) => toBuffers(bencode.decode(Buffer.from(h, 'hex')))

const dht = new DHT({ bootstrap: o.bootstrap, host: false, verify })
dht.on('error', (e) => { console.error('dht error', e); process.exit(1) })
dht.on('warning', () => {})

function errFields (err) {
  return err ? { err: err.message, code: typeof err.code === 'number' ? err.code : undefined } : {}
}

const steps = {
  'put-immutable' (cb, vhex) {
    dht.put({ v: decodeHex(vhex) }, (err, key, n) => {
      cb({ ok: !err, n, target: hex(key), ...errFields(err) })
    })
  },
  'get-immutable' (cb, target) {
    dht.get(target, { cache: false }, (err, res) => {
      if (err) return cb({ ok: false, ...errFields(err) })
      cb({ ok: true, found: !!res, v: res ? hex(bencode.encode(res.v)) : undefined, from: res ? hex(res.id) : undefined })
    })
  },
  'put-mutable' (cb, saltHex, seq, cas, vhex) {
    const opts = {
      k: publicKey,
      seq: Number(seq),
      v: decodeHex(vhex),
      sign: (buf) => crypto.sign(null, buf, privateKey)
    }
    if (saltHex) opts.salt = Buffer.from(saltHex, 'hex')
    if (cas !== '-') opts.cas = Number(cas)
    dht.put(opts, (err, key, n) => {
      cb({ ok: !err, n, target: hex(key), seq: opts.seq, ...errFields(err) })
    })
  },
  'get-mutable' (cb, pubHex, saltHex) {
    const k = Buffer.from(pubHex, 'hex')
    const salt = Buffer.from(saltHex, 'hex')
    const target = crypto.createHash('sha1').update(Buffer.concat([k, salt])).digest()
    dht.get(target, { salt, cache: false }, (err, res) => {
      if (err) return cb({ ok: false, ...errFields(err) })
      cb({
        ok: true,
        found: !!res,
        v: res ? hex(bencode.encode(res.v)) : undefined,
        seq: res ? res.seq : undefined,
        sig: res ? hex(res.sig) : undefined,
        k: res ? hex(res.k) : undefined,
        from: res ? hex(res.id) : undefined
      })
    })
  }
}

function run (i) {
  if (i >= ops.length) { console.log('DONE'); return }
  const [kind, ...rest] = ops[i].split(':')
  const start = Date.now()
  const report = (r) => {
    r.i = i
    r.op = kind
    r.seconds = (Date.now() - start) / 1000
    console.log('RESULT ' + JSON.stringify(r))
    run(i + 1)
  }
  try {
    if (!steps[kind]) return report({ ok: false, err: 'unknown op' })
    steps[kind](report, ...rest)
  } catch (e) { // report, do not die: the Go test reads the RESULT line
    report({ ok: false, err: String(e && e.message) })
  }
}

dht.on('ready', () => {
  console.log(`READY nodes=${dht.nodes.count()}`)
  run(0)
})

serve(dht, o, 'bittorrent-dht-item', version)
