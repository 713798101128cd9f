#!/usr/bin/env python3
"""Peer benchmark: one full passive-reply round trip of a WeCom callback done the
wechatpy way (installed by `scripts/peers.sh python`; re-execs itself under
.cache/peers/venv/bin/python), for comparison with wxgate's
`callback/full_round_trip` criterion bench.

Prints one JSON line: {"impl":...,"ns_per_op":<median over batches>,"iterations":<n>}
"""
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV = os.path.join(ROOT, ".cache", "peers", "venv")
if os.path.realpath(sys.prefix) != os.path.realpath(VENV) and os.path.exists(os.path.join(VENV, "bin", "python")):
    os.execv(os.path.join(VENV, "bin", "python"), [os.path.join(VENV, "bin", "python"), os.path.abspath(__file__)])

try:
    import xmltodict
    from importlib.metadata import version
    from wechatpy.crypto import _get_signature
    from wechatpy.enterprise import WeChatCrypto, parse_message
    from wechatpy.enterprise.crypto import PrpCrypto
    from wechatpy.enterprise.replies import TextReply
except ImportError as err:
    sys.exit(f"wechatpy_bench: cannot import wechatpy ({err}); run scripts/peers.sh python")

TOKEN = "QDG6eK"
KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP_ID = "wx5823bf96d3bd56c7"
TIMESTAMP = "1409659813"
NONCE = "1372623149"
CONTENT = "你好，wxgate 👋 今天天气怎么样？"
MESSAGE = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>"
    "<FromUserName><![CDATA[mycreate]]></FromUserName><CreateTime>1409659813</CreateTime>"
    f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{CONTENT}]]></Content>"
    "<MsgId>4561255354251345929</MsgId><AgentID>218</AgentID></xml>"
)

crypto = WeChatCrypto(TOKEN, KEY, CORP_ID)  # built once per app, as its users do

# Untimed setup: what WeCom would POST, and the query's msg_signature.
inbound_encrypt = PrpCrypto(crypto.key).encrypt(MESSAGE, CORP_ID).decode()
msg_signature = _get_signature(TOKEN, TIMESTAMP, NONCE, inbound_encrypt)
envelope = (
    f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{inbound_encrypt}]]></Encrypt>"
    "<AgentID><![CDATA[218]]></AgentID></xml>"
)


def round_trip(body, signature, timestamp, nonce):
    """The timed operation: inbound envelope + query -> encrypted reply envelope."""
    xml = crypto.decrypt_message(body, signature, timestamp, nonce)  # parse, verify, decrypt
    msg = parse_message(xml)
    reply = TextReply(message=msg, content="收到：" + msg.content, time=int(timestamp))
    return crypto.encrypt_message(reply, nonce, timestamp)  # render, encrypt, sign, wrap


# Untimed check that the measured path really works, decrypted with the peer.
out = xmltodict.parse(round_trip(envelope, msg_signature, TIMESTAMP, NONCE))["xml"]
reply = parse_message(crypto.decrypt_message(out, out["MsgSignature"], out["TimeStamp"], out["Nonce"]))
got = (reply.content, reply.source, reply.target, reply.time)
want = ("收到：" + CONTENT, CORP_ID, "mycreate", int(TIMESTAMP))
if got != want:  # not `assert`: must hold under python -O too
    sys.exit(f"wechatpy_bench: round trip is broken: got {got!r}, want {want!r}")


def run_batch(n):
    start = time.perf_counter_ns()
    for _ in range(n):
        round_trip(envelope, msg_signature, TIMESTAMP, NONCE)
    return time.perf_counter_ns() - start


# Warm up (~0.5 s), then size batches to ~150 ms each from one warm batch.
n, warm_ns = 1, 0
while warm_ns < 500_000_000:
    warm_ns += run_batch(n)
    n *= 2
batch = max(1, round(150_000_000 / (run_batch(n // 2) / (n // 2))))
per_op = [run_batch(batch) / batch for _ in range(20)]
print(json.dumps({
    "impl": f"wechatpy {version('wechatpy')} (python {sys.version.split()[0]})",
    "ns_per_op": round(statistics.median(per_op)),
    "iterations": batch * 20,
}))
