// Test peers must not outlive the test run that started them. If that process is killed outright (SIGKILL, a CI
// job cancelled), its cleanup never runs; this exits the peer once its parent is gone instead of leaving an
// orphaned daemon holding ports. Loaded with NODE_OPTIONS=--require; inert unless MEDVAULT_PEER_PARENT is set.
'use strict'
const expected = Number(process.env.MEDVAULT_PEER_PARENT || 0)
if (expected > 0) {
  setInterval(() => {
    if (process.ppid !== expected) process.exit(3)
  }, 1000).unref()
}
