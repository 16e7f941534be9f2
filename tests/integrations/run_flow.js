// Runs the MQTT calls of docs/integrations/node-red/flow.json with mqtt.js (the client
// inside Node-RED's mqtt nodes), exactly as the flow configures them: the broker node's
// protocol version, the mqtt-in nodes' subscriptions, and the inject button's payload
// published by the mqtt-out node with its response topic, correlation data, content
// type and message expiry. Prints one JSON line: the waiting counts seen and the reply.
//
//   node run_flow.js FLOW.json mqtt://127.0.0.1:PORT CATEGORIES [TIMEOUT_S]
"use strict";

const fs = require("fs");
const mqtt = require("mqtt");

const [flowPath, url, categoriesArg, timeoutArg] = process.argv.slice(2);
const categories = Number(categoriesArg);
const timeoutMs = 1000 * Number(timeoutArg || 10);
const flow = JSON.parse(fs.readFileSync(flowPath, "utf8"));
const byId = Object.fromEntries(flow.map((n) => [n.id, n]));
const one = (pred, what) => {
  const found = flow.filter(pred);
  if (found.length !== 1) throw new Error(`the flow needs exactly one ${what}, has ${found.length}`);
  return found[0];
};

const broker = one((n) => n.type === "mqtt-broker", "mqtt-broker");
const inject = one((n) => n.type === "inject", "inject (the button)");
const out = byId[inject.wires[0][0]];
if (!out || out.type !== "mqtt out") throw new Error("the button must be wired to an mqtt out node");
const queueIn = one((n) => n.type === "mqtt in" && n.topic.includes("/queue/"), "mqtt in on the queue states");
const replyIn = one((n) => n.type === "mqtt in" && n.topic.includes("/reply/"), "mqtt in on the replies");
for (const n of [out, queueIn, replyIn]) if (n.broker !== broker.id) throw new Error(`${n.id} uses another broker`);

function matches(filter, topic) {
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length || (f[i] !== "+" && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}
if (!matches(replyIn.topic, out.respTopic)) throw new Error("the reply mqtt-in does not subscribe to the response topic");

const payload = inject.payloadType === "json" ? JSON.parse(inject.payload) : inject.payload;
const correlation = Buffer.from(out.correl, "utf8");
const queues = {};
let done = false;

const client = mqtt.connect(url, {
  protocolVersion: Number(broker.protocolVersion),
  clean: broker.cleansession,
  keepalive: Number(broker.keepalive),
  clientId: `nodered-flow-test-${process.pid}`,
  reconnectPeriod: 0,
});
const timer = setTimeout(() => {
  console.log(JSON.stringify({ error: "timeout", queues }));
  client.end(true, () => process.exit(2));
}, timeoutMs);

function finish(result, code) {
  if (done) return;
  done = true;
  clearTimeout(timer);
  console.log(JSON.stringify(result));
  client.end(false, () => process.exit(code));
}

let published = false;
function publishWhenReady() {
  if (published || Object.keys(queues).length < categories) return;
  published = true;
  const properties = { responseTopic: out.respTopic, correlationData: correlation };
  if (out.contentType) properties.contentType = out.contentType;
  if (out.expiry) properties.messageExpiryInterval = Number(out.expiry);
  const body = typeof payload === "string" ? payload : JSON.stringify(payload);
  client.publish(out.topic, body, { qos: Number(out.qos), retain: out.retain === "true", properties }, (err) => {
    if (err) finish({ error: `publish: ${err.message}`, queues }, 1);
  });
}

client.on("error", (err) => finish({ error: `mqtt: ${err.message}`, queues }, 1));
client.on("message", (topic, message, packet) => {
  if (matches(queueIn.topic, topic)) {
    const state = JSON.parse(message.toString("utf8"));
    queues[state.category] = state.waiting; // what the change node shows: topic = category, payload = waiting
    publishWhenReady();
  } else if (matches(replyIn.topic, topic)) {
    const cd = packet.properties && packet.properties.correlationData;
    if (!cd || !Buffer.from(cd).equals(correlation)) return; // another request's reply
    finish({ queues, reply_topic: topic, correlation: Buffer.from(cd).toString("utf8"), reply: JSON.parse(message.toString("utf8")) }, 0);
  }
});
client.on("connect", () => {
  client.subscribe(
    { [queueIn.topic]: { qos: Number(queueIn.qos), nl: queueIn.nl, rap: queueIn.rap, rh: queueIn.rh },
      [replyIn.topic]: { qos: Number(replyIn.qos), nl: replyIn.nl, rap: replyIn.rap, rh: replyIn.rh } },
    (err, granted) => {
      if (err || granted.some((g) => g.qos >= 0x80)) finish({ error: "subscribe refused", granted }, 1);
      else publishWhenReady();
    },
  );
});
