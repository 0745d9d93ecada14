// What MQTT.js expects of Node.js in a browser (injected by esbuild into every module):
// process (its title "browser" makes MQTT.js use the browser's own WebSocket) and Buffer.
export const process = require('process/browser.js')
export const Buffer = require('buffer').Buffer
