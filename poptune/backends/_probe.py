"""Find out at once whether anything listens at a cluster address.

Ray's ``ray.init`` retries a silent address for many minutes and Dask's ``Client`` waits for
its timeout; a plain TCP connection to the address answers "connection refused" at once.

Example:
    >>> host_port("ray://head:10001"), host_port("tcp://10.0.0.5:8786"), host_port("auto")
    (('head', 10001), ('10.0.0.5', 8786), None)
"""

from __future__ import annotations

import socket


def host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``host:port`` or ``scheme://host:port``; None for other forms."""
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rstrip("/").rpartition(":")
    if not sep or not port.isdigit() or not host:
        return None
    return host.strip("[]"), int(port)


def unreachable(hosts: list[str], port: int, timeout: float) -> str | None:
    """None if any of ``hosts`` accepts a TCP connection on ``port``, else why not."""
    errors = []
    for host in hosts:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            return None
        except OSError as exc:
            errors.append(f"{host}:{port}: {exc.strerror or type(exc).__name__}")
    return "; ".join(errors)


def driver_ip() -> str:
    """An address of this machine that other machines can reach (the interface of its
    default route; ``127.0.0.1`` without one). No packet is sent.

    >>> driver_ip().count(".") == 3
    True
    """
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))  # no packet is sent
            return str(s.getsockname()[0])
    except OSError:
        return "127.0.0.1"
