#!/usr/bin/env node
// Peer benchmark: one full passive-reply round trip of a WeCom callback done the
// Node way (@wecom/crypto + fast-xml-parser, installed by `scripts/peers.sh node`),
// for comparison with wxgate's `callback/full_round_trip` criterion bench.
// Prints one JSON line: {"impl":...,"ns_per_op":<median over batches>,"iterations":<n>}
'use strict';

const assert = require('assert');
const path = require('path');

const MODULES = path.resolve(__dirname, '..', '..', '.cache', 'peers', 'node', 'node_modules');
let wecom;
let XMLParser;
try {
  wecom = require(path.join(MODULES, '@wecom', 'crypto'));
  ({ XMLParser } = require(path.join(MODULES, 'fast-xml-parser')));
} catch (err) {
  process.stderr.write(`wecom_crypto_bench: ${err.message}\nrun scripts/peers.sh node\n`);
  process.exit(2);
}
const { getSignature, encrypt, decrypt } = wecom;

const TOKEN = 'QDG6eK';
const KEY = 'jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C';
const CORP_ID = 'wx5823bf96d3bd56c7';
const TIMESTAMP = '1409659813';
const NONCE = '1372623149';
const CONTENT = '你好，wxgate 👋 今天天气怎么样？';
const MESSAGE = '<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>'
  + '<FromUserName><![CDATA[mycreate]]></FromUserName><CreateTime>1409659813</CreateTime>'
  + `<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[${CONTENT}]]></Content>`
  + '<MsgId>4561255354251345929</MsgId><AgentID>218</AgentID></xml>';

// Keep every value a string (MsgId does not fit in a double).
const parser = new XMLParser({ parseTagValue: false });
const cdata = (s) => `<![CDATA[${String(s).replaceAll(']]>', ']]]]><![CDATA[>')}]]>`;

// Untimed setup: what WeCom would POST, and the query's msg_signature.
const inboundEncrypt = encrypt(KEY, MESSAGE, CORP_ID);
const msgSignature = getSignature(TOKEN, TIMESTAMP, NONCE, inboundEncrypt);
const envelope = `<xml><ToUserName>${cdata(CORP_ID)}</ToUserName><Encrypt>${cdata(inboundEncrypt)}</Encrypt>`
  + `<AgentID>${cdata('218')}</AgentID></xml>`;

// The timed operation: inbound envelope + query -> encrypted reply envelope.
function roundTrip(body, signature, timestamp, nonce) {
  const { Encrypt } = parser.parse(body).xml;
  if (getSignature(TOKEN, timestamp, nonce, Encrypt) !== signature) throw new Error('bad signature');
  const { message, id } = decrypt(KEY, Encrypt);
  if (id !== CORP_ID) throw new Error('bad receive id');
  const msg = parser.parse(message).xml;
  const reply = `<xml><ToUserName>${cdata(msg.FromUserName)}</ToUserName>`
    + `<FromUserName>${cdata(msg.ToUserName)}</FromUserName><CreateTime>${timestamp}</CreateTime>`
    + `<MsgType><![CDATA[text]]></MsgType><Content>${cdata(`收到：${msg.Content}`)}</Content>`
    + `<AgentID>${msg.AgentID}</AgentID></xml>`;
  const replyEncrypt = encrypt(KEY, reply, CORP_ID);
  const replySignature = getSignature(TOKEN, timestamp, nonce, replyEncrypt);
  return `<xml><Encrypt>${cdata(replyEncrypt)}</Encrypt><MsgSignature>${cdata(replySignature)}</MsgSignature>`
    + `<TimeStamp>${timestamp}</TimeStamp><Nonce>${cdata(nonce)}</Nonce></xml>`;
}

// Untimed check that the measured path really works, decrypted with the peer.
{
  const out = parser.parse(roundTrip(envelope, msgSignature, TIMESTAMP, NONCE)).xml;
  assert.strictEqual(getSignature(TOKEN, String(out.TimeStamp), out.Nonce, out.Encrypt), out.MsgSignature);
  const { message, id } = decrypt(KEY, out.Encrypt);
  assert.strictEqual(id, CORP_ID);
  const reply = parser.parse(message).xml;
  assert.strictEqual(reply.Content, `收到：${CONTENT}`);
  assert.strictEqual(reply.ToUserName, 'mycreate');
  assert.strictEqual(reply.FromUserName, CORP_ID);
}

let sink = 0; // keeps results observable so nothing is optimised away
function runBatch(n) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i += 1) sink += roundTrip(envelope, msgSignature, TIMESTAMP, NONCE).length;
  return Number(process.hrtime.bigint() - start);
}

// Warm up (~0.5 s), then size batches to ~150 ms each from one warm batch.
let n = 1;
for (let warmNs = 0; warmNs < 5e8; n *= 2) warmNs += runBatch(n);
n /= 2; // size of the last warm-up batch
const batchSize = Math.max(1, Math.round(1.5e8 / (runBatch(n) / n)));
const perOp = [];
for (let b = 0; b < 20; b += 1) perOp.push(runBatch(batchSize) / batchSize);
perOp.sort((a, b) => a - b);
const median = (perOp[9] + perOp[10]) / 2;
if (sink === 0) throw new Error('unreachable');
process.stdout.write(`${JSON.stringify({
  impl: `@wecom/crypto ${require(path.join(MODULES, '@wecom', 'crypto', 'package.json')).version} (node ${process.versions.node})`,
  ns_per_op: Math.round(median),
  iterations: batchSize * 20,
})}\n`);
