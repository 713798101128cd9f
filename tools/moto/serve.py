"""moto's DynamoDB server for the integration tests (tests/support/moto.rs).

What `moto_server -H HOST -p PORT` runs (moto.server.main: the same WSGI app and request
handler on werkzeug's threaded server), with three changes for tests:

* Requests are served one at a time. moto checks a write's condition and then stores the
  item with nothing in between held, so two concurrent conditional PutItems on the same key
  can both succeed (measured with moto 5.2.5: 3 of 300 rounds of 32 concurrent claims had
  2 or 3 winners). DynamoDB makes each single-item conditional write atomic; serialising
  every request gives the tests that guarantee back.
* Port 0 binds a free port; the bound one is printed as `moto listening on HOST:PORT` on
  stdout once the socket listens, so the caller needs no free-port guess and no retry.
* The server exits when its stdin closes: the test process holds the other end, so the
  server cannot outlive it, however it ends.

Usage: python serve.py HOST PORT
"""

import os
import sys
import threading


def exit_when_stdin_closes() -> None:
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        os._exit(0)


def serialised(app):
    lock = threading.Lock()

    def serve_one(environ, start_response):
        with lock:
            body = app(environ, start_response)
            try:
                return [b"".join(body)]
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()

    return serve_one


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # as moto.server.main sets it
    server = make_server(
        host,
        port,
        serialised(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )
    os.environ["MOTO_PORT"] = str(server.port)
    print(f"moto listening on {host}:{server.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
