"""Peer Lambda function for the cold-start comparison in benches/cold_start.rs: the same
work as wxgate's Lambda function (route, check the signature, decrypt, reply the echo
encrypted, or answer `success`; URL verification), written the usual wechatpy way and run by
the official Python runtime interface client, as a `provided`/container image would run it:

    python -m awslambdaric wechatpy_lambda.handler

It reads the same TOML config as wxgate from WXGATE_CONFIG (inline TOML), and builds one
WeChatCrypto per app at import (init), as its users do.

Setup (a venv outside the repo's tracked files):

    python3 -m venv .cache/lambda-peer-venv
    .cache/lambda-peer-venv/bin/pip install awslambdaric==4.2.2 wechatpy==1.8.18 \
        cryptography==50.0.2 xmltodict==1.0.4

`cargo bench --bench cold_start` then measures it too (it looks for
.cache/lambda-peer-venv/bin/python, or the python named by PEER_PYTHON).
"""

import os
import time
import tomllib
from urllib.parse import parse_qs

from wechatpy import parse_message as parse_mp_message
from wechatpy.crypto import WeChatCrypto as MpCrypto
from wechatpy.enterprise import parse_message as parse_wecom_message
from wechatpy.enterprise.crypto import WeChatCrypto as WecomCrypto
from wechatpy.enterprise.replies import TextReply as WecomTextReply
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.replies import TextReply as MpTextReply
from wechatpy.utils import check_signature

REPLAY_WINDOW_SECS = 300

CONFIG = tomllib.loads(os.environ["WXGATE_CONFIG"])
APPS = {}
for app in CONFIG["apps"]:
    platform = app["platform"]
    key = app.get("encoding_aes_key")
    if platform == "wecom":
        crypto = WecomCrypto(app["token"], key, app["corp_id"])
    elif key:
        crypto = MpCrypto(app["token"], key, app["app_id"])
    else:
        crypto = None
    APPS[f"/{platform}/{app['name']}"] = (app, crypto)


def answer(status, body, content_type="text/plain; charset=utf-8"):
    return {"statusCode": status, "headers": {"content-type": content_type}, "body": body}


def handler(event, context):
    path = event.get("rawPath", "")
    entry = APPS.get(path)
    if entry is None:
        return answer(404, "no such route\n")
    app, crypto = entry
    q = {k: v[0] for k, v in parse_qs(event.get("rawQueryString", "")).items()}
    method = event["requestContext"]["http"]["method"]
    timestamp, nonce = q.get("timestamp", ""), q.get("nonce", "")
    wecom = app["platform"] == "wecom"
    try:
        if abs(time.time() - int(timestamp)) > REPLAY_WINDOW_SECS:
            return answer(403, "stale timestamp\n")
        if method == "GET":
            if wecom:
                echo = crypto.check_signature(q["msg_signature"], timestamp, nonce, q["echostr"])
            else:
                check_signature(app["token"], q["signature"], timestamp, nonce)
                echo = q["echostr"]
            print(f'{{"level":"INFO","app":"{app["name"]}","message":"URL verification answered"}}')
            return answer(200, echo)
        body = event.get("body") or ""
        if event.get("isBase64Encoded"):
            import base64

            body = base64.b64decode(body).decode()
        if crypto is not None and "msg_signature" in q:
            xml = crypto.decrypt_message(body, q["msg_signature"], timestamp, nonce)
        else:
            check_signature(app["token"], q["signature"], timestamp, nonce)
            xml = body
        msg = (parse_wecom_message if wecom else parse_mp_message)(xml)
        print(f'{{"level":"INFO","app":"{app["name"]}","msg_type":"{msg.type}","message":"callback answered"}}')
        if msg.type == "text" and app.get("reply", {}).get("echo"):
            reply = (WecomTextReply if wecom else MpTextReply)(message=msg, content=msg.content)
            if crypto is not None and "msg_signature" in q:
                return answer(200, crypto.encrypt_message(reply, nonce, timestamp), "text/xml; charset=utf-8")
            return answer(200, reply.render(), "text/xml; charset=utf-8")
        return answer(200, "success")
    except (InvalidSignatureException, KeyError, ValueError) as err:
        return answer(401, f"refused: {type(err).__name__}\n")
