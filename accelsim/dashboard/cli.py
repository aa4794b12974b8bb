"""`accelsim dashboard`: serve the what-if app. Argparse only at import; Dash loads in the handler."""

from __future__ import annotations

import argparse
from typing import Any

from accelsim.errors import UserError


def register(sub: Any) -> None:
    p = sub.add_parser("dashboard", help="live what-if dashboard (Dash) for chips, models and site power")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to bind (default 127.0.0.1: this machine only; 0.0.0.0 exposes it to the network)")
    p.add_argument("--port", type=int, default=8050)
    p.add_argument("--debug", action="store_true", help="Dash debug mode (reloader and in-page error overlay)")
    p.set_defaults(func=_dashboard)


def _dashboard(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise UserError(f"--port must be from 1 to 65535, got {args.port}")
    try:
        import dash  # noqa: F401
    except ModuleNotFoundError:
        raise UserError("the dashboard needs Dash: pip install 'accelsim[dashboard]'") from None
    from accelsim.dashboard.app import create_app

    app = create_app()
    if args.debug:  # Dash's own runner brings the reloader and the in-page error overlay
        app.run(host=args.host, port=args.port, debug=True)
        return 0
    from werkzeug.serving import make_server

    _check_bindable(args.host, args.port)
    server = make_server(args.host, args.port, app.server, threaded=True)
    print(f"accelsim dashboard on http://{args.host}:{server.server_port}/  (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def _check_bindable(host: str, port: int) -> None:
    """Raise a one-line UserError if (host, port) cannot be bound; werkzeug would print and exit 1."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
            s.bind(infos[0][4])
    except OSError as exc:  # the port is taken or the host is not an address of this machine
        raise UserError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
