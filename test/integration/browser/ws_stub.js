// Node's `ws` module stands in for the browser's WebSocket only under Node; MQTT.js requires it
// at load time but never calls it in a browser.
module.exports = function () {
  throw new Error('the ws module is for Node.js; a browser has WebSocket')
}
