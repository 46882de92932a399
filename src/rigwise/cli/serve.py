"""``rigwise serve``: run the local web app (:mod:`rigwise.web.app`) with uvicorn."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

import typer

from rigwise.errors import InputError


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(
    host: Annotated[str, typer.Option(help="address to bind; 127.0.0.1 keeps it on this "
                                      "machine")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8765,
    db: Annotated[Path | None, typer.Option("--db", help="benchmark run store to show "
                                            "(default: $RIGWISE_DB or the user data dir)")
                  ] = None,
) -> None:
    """Run the local web app: advice with charts, estimates, the catalog, benchmark runs."""
    import uvicorn

    from rigwise.web.app import LOCAL_HOSTS, create_app

    if not 0 < port < 65536:
        raise InputError("--port must be between 1 and 65535")
    hosts = list(LOCAL_HOSTS)
    if not _is_loopback(host):
        typer.echo(f"warning: binding to {host} makes the app reachable from other machines; "
                   "it has no authentication", err=True)
        hosts.append(host if host not in ("0.0.0.0", "::") else "*")
    typer.echo(f"rigwise: http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/ "
               "(Ctrl-C to stop)", err=True)
    uvicorn.run(create_app(allowed_hosts=hosts, db_path=db), host=host, port=port,
                log_level="warning")
