// Entry of the browser bundle of MQTT.js that test_websockets_browser.py builds with esbuild
// from Debian's node-mqtt (which ships no browser bundle): window.mqtt.connect(url, options).
window.mqtt = require('mqtt/lib/connect/index.js')
