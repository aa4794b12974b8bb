"""`accelsim dashboard`: serve the what-if app. Argparse only at import; Dash loads in the handler."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from accelsim.errors import UserError


def register(sub: Any) -> None:
    p = sub.add_parser("dashboard", help="live what-if dashboard (Dash) for chips, models and site power")
    p.add_argument("--host", default="127.0.0.1", type=host,
                   help="interface to bind (default 127.0.0.1: this machine only); an address beyond loopback "
                        "(0.0.0.0, a LAN address) needs --expose")
    p.add_argument("--expose", action="store_true",
                   help="allow a --host beyond loopback: anyone who can reach it can use the app (no login)")
    p.add_argument("--port", type=int, default=8050)
    p.add_argument("--debug", action="store_true",
                   help="Dash debug mode (reloader, error overlay, Werkzeug debugger): loopback --host only")
    p.set_defaults(func=_dashboard)


_HOST = re.compile(r"[A-Za-z0-9.\-]{1,253}|\[?[0-9A-Fa-f:.]{2,45}\]?")


def host(text: str) -> str:
    """A host name or IP address (checked by form only: no lookup happens while parsing)."""
    if not _HOST.fullmatch(text) or any(len(label) > 63 for label in text.split(".")):
        shown = text[:40].encode("unicode_escape").decode("ascii") + ("..." if len(text) > 40 else "")
        raise argparse.ArgumentTypeError(f"'{shown}' is not a host name or IP address")
    return text.strip("[]")


def is_loopback(name: str) -> bool:
    """True when every address `name` resolves to is a loopback address (127.0.0.0/8, ::1)."""
    import ipaddress
    import socket

    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback for i in infos)


def _dashboard(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise UserError(f"--port must be from 1 to 65535, got {args.port}")
    local = is_loopback(args.host)
    if args.debug and not local:  # the debugger runs code typed into the page: never beyond this machine
        raise UserError(f"--debug exposes the Werkzeug debugger; use it only on a loopback --host, not {args.host}")
    if not local:
        if not args.expose:
            raise UserError(f"--host {args.host} is reachable beyond this machine and the dashboard has no login; "
                            "pass --expose to serve it there on purpose")
        print(f"accelsim: warning: serving on {args.host}: anyone who can reach this address can use the dashboard "
              "(no authentication)", file=sys.stderr)
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
