"""Refuse outbound URLs that point into our own network (SSRF), unless allowed for dev/tests.

Checked when a task is submitted and again just before each request, so a DNS answer that
changes in between (rebinding) is caught too.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


class UnsafeURL(ValueError):
    pass


def _is_private(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def check_url(url: str, *, what: str = "url", resolve: bool = True) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL(f"{what} must be an http(s) URL with a host")
    if settings.WEBHOOK_ALLOW_PRIVATE or not resolve:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        raise UnsafeURL(f"{what}: cannot resolve host {parts.hostname!r}") from None
    for info in infos:
        ip = ipaddress.ip_address(info[4][0].split("%")[0])
        if _is_private(ip):
            raise UnsafeURL(
                f"{what}: {parts.hostname} resolves to a private/loopback address ({ip}); "
                "set WEBHOOK_ALLOW_PRIVATE=true to allow it (development only)"
            )
