#!/usr/bin/env python3
"""Cross-implementation peer: drives wechatpy's WeCom crypto over JSON Lines.

Installed by `scripts/peers.sh python`; runs under .cache/peers/venv/bin/python
(re-execs itself there if started with another interpreter).

  stdin : one request per line
    {"op":"encrypt","token","key","receive_id","message","timestamp","nonce"}
    {"op":"decrypt","token","key","receive_id","encrypt","timestamp","nonce","msg_signature"}
  stdout: one response per line
    {"encrypt","msg_signature"} | {"message","receive_id"} | {"error"}
Exits on EOF. Bad input yields {"error"}, never a crash.

Only wechatpy's own code does the crypto:
  encrypt: wechatpy.enterprise.crypto.PrpCrypto(key).encrypt(message, receive_id)
           + wechatpy.crypto._get_signature(token, timestamp, nonce, encrypt)
  decrypt: wechatpy.enterprise.WeChatCrypto(token, key, receive_id)
           .check_signature(msg_signature, timestamp, nonce, encrypt)
           (= _get_signature check, then PrpCrypto.decrypt, which raises
           InvalidCorpIdException unless the embedded id equals receive_id).
wechatpy only checks the receive id, so on success "receive_id" echoes the one
that was passed in.
"""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV = os.path.join(ROOT, ".cache", "peers", "venv")

if os.path.realpath(sys.prefix) != os.path.realpath(VENV) and os.path.exists(
    os.path.join(VENV, "bin", "python")
):
    venv_python = os.path.join(VENV, "bin", "python")
    os.execv(venv_python, [venv_python, os.path.abspath(__file__), *sys.argv[1:]])

try:
    from wechatpy.crypto import _get_signature
    from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto
except ImportError as err:
    sys.stderr.write(f"wechatpy_peer: cannot import wechatpy ({err}); run scripts/peers.sh python\n")
    sys.exit(2)


def field(req, name):
    value = req.get(name)
    if not isinstance(value, str):
        raise ValueError(f'field "{name}" must be a string')
    return value


def handle(req):
    op = req.get("op")
    if op not in ("encrypt", "decrypt"):
        raise ValueError(f"unknown op {op!r}")
    crypto = WeChatCrypto(field(req, "token"), field(req, "key"), field(req, "receive_id"))
    if op == "encrypt":
        encrypt = PrpCrypto(crypto.key).encrypt(field(req, "message"), crypto.corp_id).decode("ascii")
        sig = _get_signature(crypto.token, field(req, "timestamp"), field(req, "nonce"), encrypt)
        return {"encrypt": encrypt, "msg_signature": sig}
    # op == "decrypt": signature check, then decrypt + corp id check
    message = crypto.check_signature(
        field(req, "msg_signature"), field(req, "timestamp"), field(req, "nonce"), field(req, "encrypt")
    )
    return {"message": message, "receive_id": crypto.corp_id}


def main():
    for raw in sys.stdin.buffer:
        if not raw.strip():
            continue
        try:
            req = json.loads(raw)
            if not isinstance(req, dict):
                raise ValueError("request must be a JSON object")
            resp = handle(req)
        except Exception as err:  # noqa: BLE001 - any peer failure is a protocol-level error
            resp = {"error": f"{type(err).__name__}: {err}"}
        try:
            sys.stdout.write(json.dumps(resp) + "\n")
            sys.stdout.flush()
        except BrokenPipeError:  # the test harness hung up: nothing left to answer
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return


if __name__ == "__main__":
    main()
