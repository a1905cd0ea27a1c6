"""Fetching a photo named by URL for the service (``image_url``, ``bg_image_url``), only from
the hosts the server's operator named (``--allow-fetch HOST …``), and safely:

- ``https`` only, unless the operator allowed plain ``http`` too;
- the host name is resolved here, with a time limit, and every address it has must be a public
  one (no private, loopback, link-local — cloud metadata at 169.254.169.254 — shared, reserved
  or multicast address); the connection then goes to the address that was checked (the name
  is kept for TLS and the Host header), so a second lookup cannot point it elsewhere;
- a redirect is followed (at most 3) only through the same checks;
- at most ``max_bytes`` are read, and the whole fetch, lookups included, ends by ``timeout``.

Every refusal is a :class:`SettingError` naming the field.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from operations.errors import SettingError

MAX_REDIRECTS = 3


@dataclass(frozen=True)
class FetchSettings:
    """What may be fetched, and how much of it."""

    hosts: tuple[str, ...] = ()  # none: nothing is fetched
    allow_http: bool = False
    max_bytes: int = 25 * 1024 * 1024
    timeout: float = 20.0


def public(address: str) -> bool:
    """Whether ``address`` is one on the public internet (the only kind fetched from)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int, timeout: float) -> list[str]:
    """The host's addresses, within ``timeout`` (a lookup that hangs does not hang us: it is
    left to finish on its own thread)."""
    found: list[str] = []
    failed: list[BaseException] = []

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            found.extend(str(info[4][0]) for info in infos)
        except OSError as exc:
            failed.append(exc)

    worker = threading.Thread(target=lookup, name="bgswap-resolve", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"looking up {host} took over {timeout:g} s")
    if failed or not found:
        raise OSError(f"{host} could not be looked up")
    return found


def fetch(url: str, field: str, settings: FetchSettings) -> bytes:
    """The bytes at ``url``.

    Raises:
        SettingError: the URL is not allowed, or could not be fetched (naming ``field``).
    """
    import httpx

    deadline = time.monotonic() + settings.timeout
    for _ in range(MAX_REDIRECTS + 1):
        target = _checked(url, field, settings, deadline)
        try:
            answer = _get(httpx, url, target, settings, deadline)
        except (httpx.HTTPError, OSError) as exc:
            raise SettingError(field, url, f"could not be fetched: {exc}") from None
        if isinstance(answer, str):  # a redirect: its target, checked like the first
            url = answer
            continue
        return answer
    raise SettingError(field, url, f"more than {MAX_REDIRECTS} redirects")


def _checked(url: str, field: str, settings: FetchSettings, deadline: float) -> str:
    """The address to connect to for ``url``, once every check has passed."""
    parts = urlsplit(url)
    schemes = ("https", "http") if settings.allow_http else ("https",)
    if parts.scheme not in schemes:
        raise SettingError(field, url, f"only {' or '.join(schemes)} URLs are fetched")
    host = (parts.hostname or "").lower().rstrip(".")
    allowed = {h.lower().rstrip(".") for h in settings.hosts}
    if host not in allowed:
        raise SettingError(field, url, "this server fetches only from the hosts it was told")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolve(host, port, max(0.1, deadline - time.monotonic()))
    except OSError as exc:
        raise SettingError(field, url, str(exc)) from None
    private = [a for a in addresses if not public(a)]
    if private:
        raise SettingError(field, url, f"{host} has an address that is not public ({private[0]})")
    return addresses[0]


def _get(httpx, url: str, address: str, settings: FetchSettings, deadline: float) -> bytes | str:
    """GET ``url`` from ``address``: its bytes, or a redirect's absolute target."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{address}]" if ":" in address else address
    if parts.port is not None:
        netloc += f":{parts.port}"
    pinned = parts._replace(netloc=netloc).geturl()
    remaining = max(0.1, deadline - time.monotonic())
    headers = {"Host": parts.netloc.rsplit("@", 1)[-1], "Accept": "image/*"}
    with (
        httpx.Client(timeout=remaining, follow_redirects=False, trust_env=False) as client,
        client.stream("GET", pinned, headers=headers, extensions={"sni_hostname": host}) as answer,
    ):
        if answer.is_redirect:
            return urljoin(url, answer.headers.get("location", ""))
        answer.raise_for_status()
        declared = int(answer.headers.get("content-length") or 0)
        if declared > settings.max_bytes:
            raise OSError(f"{declared} bytes, over the limit of {settings.max_bytes}")
        body = bytearray()
        for chunk in answer.iter_bytes():
            body += chunk
            if len(body) > settings.max_bytes:
                raise OSError(f"over the limit of {settings.max_bytes} bytes")
            if time.monotonic() > deadline:
                raise OSError(f"took over {settings.timeout:g} s")
        return bytes(body)
