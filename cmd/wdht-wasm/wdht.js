// wdht.js: loads the wdht WebAssembly node (see wdht.d.ts). Load the Go installation's
// wasm_exec.js first (it defines Go), then:
//
//   const wdht = await loadWdht('wdht.wasm')
//   const node = await wdht.start({ bootstrap: ['dht.example.com:16881'] })
'use strict'
async function loadWdht (url) {
  if (globalThis.wdht) return globalThis.wdht
  const go = new Go() // eslint-disable-line no-undef
  const ready = new Promise((resolve) => { globalThis.onwdhtready = resolve })
  const res = await fetch(url || 'wdht.wasm')
  if (!res.ok) throw new Error('wdht: fetching ' + (url || 'wdht.wasm') + ': ' + res.status + ' ' + res.statusText)
  const { instance } = await WebAssembly.instantiateStreaming(res, go.importObject)
  go.run(instance) // runs until the page closes
  return ready
}
globalThis.loadWdht = loadWdht
