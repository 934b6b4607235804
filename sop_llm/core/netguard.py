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


def _say(what: str, text: str) -> str:
    return f"{what}: {text}" if what else text


def parse_url(url: object, *, what: str = "") -> tuple[str, int | None]:
    """(host, port) of an http(s) URL, or UnsafeURL: a wrong type, a bad port (urlsplit raises
    ValueError only when `.port` is read) and an unbalanced IPv6 bracket are all refused here."""
    if not isinstance(url, str):
        raise UnsafeURL(_say(what, f"must be a URL string, not {type(url).__name__}"))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(_say(what, f"not a valid URL ({exc})")) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL(_say(what, "must be an http(s) URL with a host"))
    return parts.hostname, port


def check_url(url: object, *, what: str = "url", resolve: bool = True) -> None:
    """`what` prefixes the message; pass "" where the field is reported on its own."""
    host, port = parse_url(url, what=what)
    if settings.WEBHOOK_ALLOW_PRIVATE or not resolve:
        return
    try:
        infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise UnsafeURL(_say(what, f"cannot resolve host {host!r}")) from None
    for info in infos:
        ip = ipaddress.ip_address(info[4][0].split("%")[0])
        if _is_private(ip):
            raise UnsafeURL(
                _say(what, f"{host} resolves to a private/loopback address ({ip}); ")
                + "set WEBHOOK_ALLOW_PRIVATE=true to allow it (development only)"
            )
