// Drives the published ooo-client against the ooo server under test, one step at a
// time. After every write the page waits for exactly one websocket message on each
// subscription, checks what it expected, and reports the state the client rebuilt to
// the Go test (POST /__test/report), which compares it with the server's storage. No
// write is made while a report is in flight, so the storage holds the same state.
import ooo from 'ooo-client'

const host = location.host
const stepTimeout = 5000

async function post(path, body) {
  const res = await fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  })
  const text = await res.text()
  if (!res.ok) throw new Error(`${path}: ${res.status} ${text}`)
  return JSON.parse(text)
}

const report = (body) => post('/__test/report', body)

// A push made by another client: the Go side posts it with its own HTTP client.
const goPush = async (path, value) => (await post('/__test/act', { action: 'push', path, value })).index

// subscribe opens an ooo-client subscription and queues a deep copy of every state it
// reports (the client patches its cache in place).
function subscribe(path) {
  const client = ooo(path === '' ? host : `${host}/${path}`)
  const sub = { path, client, queue: [], waiters: [], seen: [] }
  client.onmessage = (data) => {
    const copy = JSON.parse(JSON.stringify(data))
    sub.seen.push(copy)
    const waiter = sub.waiters.shift()
    if (waiter) waiter.resolve(copy)
    else sub.queue.push(copy)
  }
  return sub
}

function next(sub, what, timeout = stepTimeout) {
  if (sub.queue.length > 0) return Promise.resolve(sub.queue.shift())
  return new Promise((resolve, reject) => {
    const waiter = { resolve: (v) => { clearTimeout(waiter.timer); resolve(v) } }
    waiter.timer = setTimeout(() => {
      sub.waiters = sub.waiters.filter((w) => w !== waiter)
      reject(new Error(`timed out after ${timeout}ms waiting for ${what} on '${sub.path}'; ` +
        `states seen: ${JSON.stringify(sub.seen)}`))
    }, timeout)
    sub.waiters.push(waiter)
  })
}

// step waits for the next message on sub, checks it, and reports it with the key
// whose server state it must equal.
async function step(scenario, name, sub, check, timeout = stepTimeout) {
  const state = await next(sub, `${scenario}/${name}`, timeout)
  let problem = ''
  try {
    problem = check(state) || ''
  } catch (e) {
    problem = `check threw: ${e}`
  }
  await report({ scenario, step: name, key: sub.path, state, problem })
  return state
}

const want = (cond, msg) => (cond ? '' : msg)
const ns = (list) => list.map((o) => o.data.n).join(',')

async function objectScenario() {
  const key = 'browser/box'
  const sub = subscribe(key)
  await step('object', 'empty', sub, (s) =>
    want(s.created === 0 && s.updated === 0 && s.index === '', 'want the empty object'))
  await sub.client.publish(key, { n: 1 })
  await step('object', 'created', sub, (s) =>
    want(s.created > 0 && s.updated === 0 && s.index === 'box' && s.data.n === 1,
      'want created, not updated, index box, n 1'))
  await sub.client.publish(key, { n: 2 })
  await step('object', 'updated', sub, (s) =>
    want(s.created > 0 && s.updated >= s.created && s.data.n === 2, 'want updated with n 2'))
  await sub.client.unpublish(key)
  await step('object', 'deleted', sub, (s) =>
    want(s.created === 0 && s.index === '', 'want the empty object again'))
  sub.client.close()
}

async function listScenario() {
  const glob = 'browser/list/*'
  const sub = subscribe(glob)
  await step('list', 'empty', sub, (s) => want(Array.isArray(s) && s.length === 0, 'want []'))
  const a = await sub.client.publish(glob, { n: 1 })
  await step('list', 'pushed', sub, (s) =>
    want(s.length === 1 && s[0].index === a && s[0].data.n === 1, `want [${a}:1]`))
  const b = await sub.client.publish(glob, { n: 2 })
  await step('list', 'pushed-second', sub, (s) =>
    want(s.length === 2 && s[0].index === a && s[1].index === b && ns(s) === '1,2',
      `want [${a}:1, ${b}:2]`))
  await sub.client.publish(`browser/list/${a}`, { n: 3 })
  await step('list', 'updated', sub, (s) =>
    want(s.length === 2 && s[0].index === a && s[0].updated > 0 && ns(s) === '3,2',
      `want [${a}:3 updated, ${b}:2]`))
  await sub.client.unpublish(`browser/list/${a}`)
  await step('list', 'deleted', sub, (s) =>
    want(s.length === 1 && s[0].index === b && ns(s) === '2', `want [${b}:2]`))
  sub.client.close()
}

async function feedScenario() {
  const glob = 'browser/feed/*'
  const subs = [subscribe(glob), subscribe(glob)]
  for (const [i, sub] of subs.entries()) {
    await step('feed', `empty-${i}`, sub, (s) => want(Array.isArray(s) && s.length === 0, 'want []'))
  }
  const indexes = []
  for (let n = 1; n <= 4; n++) {
    // Odd pushes come from the Go client, even ones from the first page subscriber.
    const index = n % 2 === 1 ? await goPush(glob, { n }) : await subs[0].client.publish(glob, { n })
    indexes.push(index)
    const order = indexes.join(',')
    const values = Array.from({ length: n }, (_, i) => i + 1).join(',')
    for (const [i, sub] of subs.entries()) {
      await step('feed', `push-${n}-${i}`, sub, (s) =>
        want(s.map((o) => o.index).join(',') === order && ns(s) === values,
          `want indexes ${order} with values ${values}`))
    }
  }
  const late = subscribe(glob)
  await step('feed', 'late', late, (s) =>
    want(s.map((o) => o.index).join(',') === indexes.join(','), 'want the whole list at once'))
  for (const sub of [...subs, late]) sub.client.close()
}

async function restartScenario() {
  const key = 'browser/survivor'
  const sub = subscribe(key)
  await step('restart', 'empty', sub, (s) => want(s.created === 0, 'want the empty object'))
  await sub.client.publish(key, { n: 1 })
  const before = await step('restart', 'before', sub, (s) => want(s.data.n === 1, 'want n 1'))
  // The Go side closes the server (which disconnects every websocket) and starts it
  // again on the same address. The client reconnects by itself after its 3 s interval,
  // sending ?v=<the version it holds>; the new server's version differs, so it must
  // answer with a snapshot.
  await post('/__test/act', { action: 'restart' })
  await step('restart', 'reconnected', sub, (s) =>
    want(s.data.n === 1 && s.created === before.created, 'want the same n 1 entry back'), 20000)
  await sub.client.publish(key, { n: 2 })
  await step('restart', 'after', sub, (s) => want(s.data.n === 2 && s.updated > 0, 'want n 2, updated'))
  sub.client.close()
}

async function clockScenario() {
  const sub = subscribe('')
  const first = await next(sub, 'the first clock message')
  const second = await next(sub, 'the second clock message')
  await report({ scenario: 'clock', step: 'ticks', ticks: [first, second] })
  sub.client.close()
}

async function run() {
  for (const scenario of [objectScenario, listScenario, feedScenario, restartScenario, clockScenario]) {
    try {
      await scenario()
    } catch (e) {
      await report({ scenario: scenario.name, error: String(e && e.stack ? e.stack : e) })
    }
  }
  await report({ done: true })
}

window.addEventListener('unhandledrejection', (e) => { report({ error: `unhandled rejection: ${e.reason}` }) })
run()
