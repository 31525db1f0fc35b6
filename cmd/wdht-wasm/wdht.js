// wdht.js: loads the wdht WebAssembly node (see wdht.d.ts). Load the Go installation's
// wasm_exec.js first (it defines Go), then:
//
//   const wdht = await loadWdht('wdht.wasm')
//   const node = await wdht.start({ bootstrap: ['dht.example.com:16881'] })
//
// It leaves the performance marks wdht:fetch, wdht:instantiated (the module downloaded
// and compiled) and wdht:ready (the Go program started).
'use strict'
async function loadWdht (url) {
  if (globalThis.wdht) return globalThis.wdht
  const go = new Go() // eslint-disable-line no-undef
  const ready = new Promise((resolve) => { globalThis.onwdhtready = resolve })
  const mark = (name) => { if (globalThis.performance && performance.mark) performance.mark(name) }
  mark('wdht:fetch')
  const res = await fetch(url || 'wdht.wasm')
  if (!res.ok) throw new Error('wdht: fetching ' + (url || 'wdht.wasm') + ': ' + res.status + ' ' + res.statusText)
  const { instance } = await WebAssembly.instantiateStreaming(res, go.importObject)
  mark('wdht:instantiated') // downloaded and compiled
  go.run(instance) // runs until the page closes
  const api = await ready
  mark('wdht:ready') // the Go program's start-up done
  return api
}
globalThis.loadWdht = loadWdht
