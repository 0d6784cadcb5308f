// js-ipfs 0.66 calls Promise.withResolvers, which Node only ships from v22; Node 20 is what this machine has.
// Loaded with NODE_OPTIONS=--require so it runs before any js-ipfs module.
'use strict'
if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers () {
      let resolve
      let reject
      const promise = new this((res, rej) => { resolve = res; reject = rej })
      return { promise, resolve, reject }
    }
  })
}
