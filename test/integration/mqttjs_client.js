// MQTT.js (Debian's node-mqtt) as a WebSocket client for test_websockets.py.
//
//   node mqttjs_client.js URL MODE TOPIC QOS [COUNT] [CAFILE]
//
// MODE echo: subscribes to TOPIC at QOS, publishes COUNT messages "m0".."mN-1" to it at QOS and
//   waits for all of them to come back; prints "ok N" and exits 0 (1 on any failure or after 20 s).
// MODE sub: subscribes, prints "ready" after the SUBACK, then each message's payload on a line
//   until COUNT have arrived (then exits 0).
// MODE pub: publishes COUNT messages "m0".. at QOS and exits 0 once all are acknowledged.
// Run with NODE_PATH=/usr/share/nodejs.
'use strict'

const fs = require('fs')
const mqtt = require('mqtt')

const [url, mode, topic, qosArg, countArg, cafile] = process.argv.slice(2)
const qos = Number(qosArg)
const count = Number(countArg || 1)
const opts = { clientId: 'mqttjs-' + process.pid + '-' + mode, reconnectPeriod: 0, connectTimeout: 10000 }
if (cafile) opts.ca = fs.readFileSync(cafile)

const timer = setTimeout(() => { console.log('timeout'); process.exit(1) }, 20000)
const client = mqtt.connect(url, opts)
client.on('error', (e) => { console.log('error ' + e.message); process.exit(1) })
client.on('close', () => { if (!done) { console.log('closed'); process.exit(1) } })
let done = false

function finish (line) {
  done = true
  console.log(line)
  clearTimeout(timer)
  client.end(false, {}, () => process.exit(0))
}

client.on('connect', () => {
  if (mode === 'pub') {
    let acked = 0
    for (let i = 0; i < count; i++) {
      client.publish(topic, 'm' + i, { qos }, (err) => {
        if (err) { console.log('error ' + err.message); process.exit(1) }
        if (++acked === count) finish('ok ' + count)
      })
    }
    return
  }
  client.subscribe(topic, { qos }, (err, granted) => {
    if (err || granted[0].qos !== qos) { console.log('suback ' + JSON.stringify(granted)); process.exit(1) }
    if (mode === 'sub') {
      console.log('ready')
      return
    }
    for (let i = 0; i < count; i++) client.publish(topic, 'm' + i, { qos })
  })
  const seen = []
  client.on('message', (t, payload, packet) => {
    seen.push(payload.toString())
    if (mode === 'sub') console.log(payload.toString())
    if (seen.length < count) return
    if (mode === 'echo') {
      const want = Array.from({ length: count }, (_, i) => 'm' + i)
      if (JSON.stringify(seen) !== JSON.stringify(want)) { console.log('order ' + seen.join(',')); process.exit(1) }
      if (packet.qos !== qos) { console.log('qos ' + packet.qos); process.exit(1) }
    }
    finish('ok ' + seen.length)
  })
})
