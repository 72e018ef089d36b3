"""Free TCP ports on the loopback interface, and whether one accepts connections."""

from __future__ import annotations

import contextlib
import socket

#: The only address the brokers here listen on.
LOOPBACK = "127.0.0.1"


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago.

    All sockets are held open until every port is chosen, so the ports differ.
    Another process may still take one before it is used.
    """
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((LOOPBACK, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def free_port() -> int:
    """One loopback port that was free a moment ago.

    >>> 0 < free_port() < 65536
    True
    """
    return free_ports(1)[0]


def accepts_connections(port: int, timeout: float = 0.25) -> bool:
    """Whether something accepts TCP connections on ``127.0.0.1:port``."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout):
            return True
    except OSError:
        return False
