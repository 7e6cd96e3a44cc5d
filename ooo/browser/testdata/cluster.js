// Follows users/* on node B of a pivot cluster with the published ooo-client, while the
// Go test (cluster_test.go) writes on node A and on the pivot. The Go side hands the
// page one expectation at a time (GET /__test/expect): conditions the list must meet
// once a write arrived (an entry holding a marker value, or no entry with an index).
// The page arms it (so the write is made only once the page is watching), and reports
// the time at which a message of the subscription first made the list meet it, and the
// time that message's frame arrived. Last,
// it posts the whole list it rebuilt, which the Go test compares with a GET of node B.
import ooo from 'ooo-client'

// now is the wall clock in milliseconds, as Go's time.Now on the same machine (the
// browser coarsens it to 0.1 ms).
const now = () => performance.timeOrigin + performance.now()

async function post(body) {
  const res = await fetch('/__test/event', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  })
  if (!res.ok) throw new Error(`/__test/event: ${res.status} ${await res.text()}`)
}

// The arrival time of the latest frame, taken by a listener registered before
// ooo-client's own handler, so the time the client spends decoding and patching can be
// told from the time the frame took to come.
let frameAt = 0
const NativeWebSocket = window.WebSocket
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) {
    super(...args)
    this.addEventListener('message', () => { frameAt = now() })
  }
}

let state = null
let first = null
const firstSnapshot = new Promise((resolve) => { first = resolve })
let pending = null

const holds = (conditions) => conditions.every((c) => c.has !== undefined
  ? state.some((e) => e.data && e.data.marker === c.has)
  : !state.some((e) => e.index === c.absent))

const client = ooo(`${location.host}/users/*`)
client.onmessage = (data) => {
  const at = now()
  state = data
  if (first) {
    first()
    first = null
  }
  if (pending && holds(pending.conditions)) {
    const p = pending
    pending = null
    p.resolve({ at, frameAt })
  }
}

async function run() {
  await firstSnapshot
  await post({ kind: 'ready', count: state.length })
  // Bounded: the Go test sends at most a few hundred expectations, and answers 204
  // after waiting 10 s without one.
  for (let polls = 0; polls < 1000; polls++) {
    const res = await fetch('/__test/expect')
    if (res.status === 204) continue
    if (!res.ok) throw new Error(`/__test/expect: ${res.status} ${await res.text()}`)
    const exp = await res.json()
    if (exp.final) {
      await post({ kind: 'final', state })
      return
    }
    if (holds(exp.conditions)) {
      throw new Error(`expectation ${exp.id} already met before its write: ${JSON.stringify(exp.conditions)}`)
    }
    const seen = new Promise((resolve) => { pending = { conditions: exp.conditions, resolve } })
    await post({ kind: 'armed', id: exp.id })
    const { at, frameAt } = await seen
    await post({ kind: 'seen', id: exp.id, at, frameAt })
  }
  throw new Error('too many polls of /__test/expect')
}

window.addEventListener('unhandledrejection', (e) => { post({ kind: 'error', error: `unhandled rejection: ${e.reason}` }) })
run().catch((e) => post({ kind: 'error', error: String(e && e.stack ? e.stack : e) }))
