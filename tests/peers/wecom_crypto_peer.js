#!/usr/bin/env node
// Cross-implementation peer: drives Tencent's official Node package @wecom/crypto
// (installed by `scripts/peers.sh node`) over a JSON Lines protocol so that the
// Rust integration tests can check wxgate against it.
//
//   stdin : one request per line
//     {"op":"encrypt","token","key","receive_id","message","timestamp","nonce"}
//     {"op":"decrypt","token","key","receive_id","encrypt","timestamp","nonce","msg_signature"}
//   stdout: one response per line
//     {"encrypt","msg_signature"} | {"message","receive_id"} | {"error"}
// Exits on EOF. Bad input yields {"error"}, never a crash.
//
// Only @wecom/crypto's own getSignature/encrypt/decrypt do the crypto. Note that
// its decrypt() does not check the receive id: it returns it, and the driver
// reports it as-is in "receive_id" for the caller to compare.
'use strict';

const path = require('path');
const readline = require('readline');

const ROOT = path.resolve(__dirname, '..', '..');
const PKG = path.join(ROOT, '.cache', 'peers', 'node', 'node_modules', '@wecom', 'crypto');

let wecom;
try {
  wecom = require(PKG);
} catch (err) {
  process.stderr.write(`wecom_crypto_peer: cannot load ${PKG} (${err.message}); run scripts/peers.sh node\n`);
  process.exit(2);
}

function str(req, name) {
  const v = req[name];
  if (typeof v !== 'string') throw new Error(`field "${name}" must be a string`);
  return v;
}

function handle(req) {
  switch (req.op) {
    case 'encrypt': {
      const encrypt = wecom.encrypt(str(req, 'key'), str(req, 'message'), str(req, 'receive_id'));
      const sig = wecom.getSignature(str(req, 'token'), str(req, 'timestamp'), str(req, 'nonce'), encrypt);
      return { encrypt, msg_signature: sig };
    }
    case 'decrypt': {
      const encrypt = str(req, 'encrypt');
      const expected = wecom.getSignature(str(req, 'token'), str(req, 'timestamp'), str(req, 'nonce'), encrypt);
      if (expected !== str(req, 'msg_signature')) return { error: 'signature mismatch' };
      const { message, id } = wecom.decrypt(str(req, 'key'), encrypt);
      return { message, receive_id: id };
    }
    default:
      throw new Error(`unknown op ${JSON.stringify(req.op)}`);
  }
}

// The test harness hung up: nothing left to answer.
process.stdout.on('error', (err) => process.exit(err.code === 'EPIPE' ? 0 : 1));

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', (line) => {
  if (line.trim() === '') return;
  let resp;
  try {
    const req = JSON.parse(line);
    if (req === null || typeof req !== 'object' || Array.isArray(req)) throw new Error('request must be a JSON object');
    resp = handle(req);
  } catch (err) {
    resp = { error: `${err.name}: ${err.message}` };
  }
  // Pipe writes are synchronous on Linux (and drained before a natural exit elsewhere).
  process.stdout.write(`${JSON.stringify(resp)}\n`);
});
