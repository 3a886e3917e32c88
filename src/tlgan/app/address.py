"""Where a tlgan page listens: checked before any model loads, so a bad port is said at once, not after
the seconds a server takes to start; and a host that opens the page to the network is said out loud."""

from __future__ import annotations

import errno
import ipaddress
import socket

from ..errors import TLGANError

MAX_PORT = 65535


class AddressError(TLGANError, ValueError):
    """The page cannot listen at this host and port."""


def check_address(host: str, port: int) -> None:
    """Refuse a port outside 1..65535, a host this machine has no address for, or a port that something else
    already listens on (raises ``AddressError`` saying what to do)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= MAX_PORT:
        raise AddressError(f"port {port!r} is not a port: give one from 1 to {MAX_PORT} (e.g. --port 7860)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as e:
        raise AddressError(f"cannot listen on host {host!r}: {e}; give an address of this machine "
                           "(e.g. --host 127.0.0.1)") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is no clash
        try:
            probe.bind(address)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise AddressError(f"port {port} on {host} is already in use (another tlgan serve?): stop that "
                                   f"server or pick another port, e.g. --port {port + 1 if port < MAX_PORT else 7860}"
                                   ) from None
            raise AddressError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def network_warning(host: str) -> str | None:
    """A warning when ``host`` lets other machines in (anything but a loopback address), else None."""
    if host.lower() == "localhost":
        return None
    try:
        if ipaddress.ip_address(host.strip("[]")).is_loopback:
            return None
    except ValueError:
        pass  # a host name: it may be reached from the network
    return (f"warning: --host {host} opens the page to the network: anyone who can reach this machine can use it "
            "and upload photos to it. Use --host 127.0.0.1 to keep it to this machine.")
