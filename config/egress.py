"""Every outbound call to an address that brand data names goes through this module.

Webhook URLs, engine base URLs and S3 endpoints are typed by brand users, so a request to
them must never reach the server's own network: loopback, private, link-local (the cloud
metadata service at 169.254.169.254), multicast, unspecified, reserved and any other
non-global address is refused, IPv4 embedded in IPv6 (``::ffff:a.b.c.d``, 6to4, Teredo)
included. Odd literal forms (``http://2130706433/``, ``http://0x7f.1/``, ``http://127.1/``,
``http://0/``) are caught too, because the check is made on the *resolved* address.

A host is resolved once per connection (:func:`resolve`), every address is checked, and the
socket is opened to a checked address, never to the name: a DNS answer that changes between
the check and the connection (DNS rebinding) cannot reach a refused address. TLS (SNI and
certificate) and the Host header still use the name. Adapters connect each client this way:

* :func:`egress_session`: a ``requests`` session (webhooks);
* :func:`egress_httpx_client`: an ``httpx2`` client for the ``openai`` client (engines);
* :func:`egress_botocore_pin`: a botocore client's connection pools (S3 targets), per client.

Operators allow private hosts (a local vLLM, a MinIO on loopback) with the setting
``SOURCEBOOK_EGRESS_ALLOW``: a list of host names (``minio.internal``), host names or
addresses with a port (``127.0.0.1:8765``: that port only) and networks (``10.0.0.0/8``).
It is empty by default and read at call time.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_SETTING = "SOURCEBOOK_EGRESS_ALLOW"
DEFAULT_PORTS = {"http": 80, "https": 443}


class EgressRefused(Exception):
    """The address may never be called (scheme, host, a non-public address): permanent.

    Deliberately not an ``OSError``: HTTP clients pass it through instead of retrying it as
    a network error.
    """


class EgressUnresolved(OSError):
    """The host does not resolve now: a network error, worth retrying."""


# --- resolving and checking -------------------------------------------------------------


def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses of ``host``, in the resolver's order (tests replace this function).

    Numeric forms that ``getaddrinfo`` accepts (``2130706433``, ``0x7f.1``, ``127.1``) come
    back as the address they mean.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise EgressUnresolved(f"The host {host} does not resolve: {error}.") from None
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def address_problem(address: IPAddress) -> str | None:
    """Why ``address`` is not a public unicast address (e.g. "a loopback address"), or None."""
    embedded: list[ipaddress.IPv4Address] = []
    if isinstance(address, ipaddress.IPv6Address):
        # IPv4 inside IPv6 (::ffff:a.b.c.d, 6to4, Teredo) reaches the IPv4 address.
        embedded = [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
        if address.teredo is not None:
            embedded.append(address.teredo[1])
    for candidate in (*embedded, address):
        for label, flag in (
            ("loopback", candidate.is_loopback),
            ("link-local", candidate.is_link_local),
            ("multicast", candidate.is_multicast),
            ("unspecified", candidate.is_unspecified),
            ("reserved", candidate.is_reserved),
            ("private", candidate.is_private),
            ("non-global", not candidate.is_global),
        ):
            if flag:
                inside = f" ({candidate} inside)" if candidate is not address else ""
                return f"a {label} address{inside}"
    return None


@dataclass(frozen=True)
class _Allowed:
    name: str | None = None
    network: IPNetwork | None = None
    port: int | None = None


def _split_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):  # [v6] or [v6]:port
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        if port.isdigit():
            return host, int(port)
    return entry, None


# Entries added for a block of operator code (see egress_allowing), never from brand data.
_allowed_here: ContextVar[tuple[str, ...]] = ContextVar("egress_allowed_here", default=())


@contextmanager
def egress_allowing(*entries: str) -> Iterator[None]:
    """Allow ``entries`` (allow-list syntax) too, in this thread, for the block only.

    For operator code such as ``loaddemo``, which asks a scripted engine it started itself
    on loopback; never call it with an address that brand data chose.
    """
    token = _allowed_here.set(_allowed_here.get() + entries)
    try:
        yield
    finally:
        _allowed_here.reset(token)


def allow_list() -> list[_Allowed]:
    """The operator's ``SOURCEBOOK_EGRESS_ALLOW``, parsed (a list, or one comma-separated string)."""
    raw = getattr(settings, ALLOW_SETTING, None) or []
    if isinstance(raw, str):
        raw = raw.split(",")
    raw = [*raw, *_allowed_here.get()]
    entries: list[_Allowed] = []
    for item in raw:
        entry = str(item).strip().lower()
        if not entry:
            continue
        if "/" in entry:
            entries.append(_Allowed(network=ipaddress.ip_network(entry, strict=False)))
            continue
        host, port = _split_port(entry)
        try:
            entries.append(_Allowed(network=ipaddress.ip_network(host), port=port))
        except ValueError:
            entries.append(_Allowed(name=host.rstrip("."), port=port))
    return entries


def _host_allowed(host: str, port: int, entries: list[_Allowed]) -> bool:
    name = host.lower().rstrip(".")
    return any(e.name == name and e.port in (None, port) for e in entries)


def _address_allowed(address: IPAddress, port: int, entries: list[_Allowed]) -> bool:
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    return any(
        e.network is not None
        and e.port in (None, port)
        and any(c.version == e.network.version and c in e.network for c in candidates)
        for e in entries
    )


def refusal_message(host: str, address: IPAddress, problem: str) -> str:
    return (
        f"The host {host} resolves to {address}, {problem}; outbound calls go only to public "
        f"addresses (an operator can allow a host with {ALLOW_SETTING})."
    )


def checked_addresses(host: str, port: int) -> list[IPAddress]:
    """Resolve ``host`` once and return its addresses if every one may be called.

    Raises :class:`EgressRefused` if any address is not public (and not allowed by the
    operator), :class:`EgressUnresolved` if the host does not resolve.
    """
    host = host.strip("[]")
    if not host:
        raise EgressRefused("The URL has no host.")
    entries = allow_list()
    addresses = resolve(host, port)
    if not addresses:
        raise EgressUnresolved(f"The host {host} does not resolve.")
    if _host_allowed(host, port, entries):
        return addresses
    for address in addresses:
        problem = address_problem(address)
        if problem and not _address_allowed(address, port, entries):
            raise EgressRefused(refusal_message(host, address, problem))
    return addresses


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int


def url_endpoint(url: str) -> Endpoint:
    """Scheme, host and port of an http(s) URL; :class:`EgressRefused` if it has none."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise EgressRefused(f"The URL is malformed: {error}.") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise EgressRefused("The URL must start with http:// or https://.")
    if not parts.hostname:
        raise EgressRefused("The URL has no host.")
    return Endpoint(parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme])


def egress_url_check(url: str) -> list[IPAddress]:
    """Raise EgressRefused or EgressUnresolved unless ``url`` may be called now."""
    endpoint = url_endpoint(url)
    return checked_addresses(endpoint.host, endpoint.port)


def egress_url_problem(url: str, *, unresolved_ok: bool = False) -> str | None:
    """Why ``url`` may not be called, or None: for form and serializer validation.

    Only http(s) URLs with a host whose addresses are all public (or allowed by the
    operator) pass. A host that does not resolve is a problem too, unless ``unresolved_ok``
    (the address is checked again at every connection anyway).
    """
    try:
        egress_url_check(url)
    except EgressRefused as error:
        return str(error)
    except EgressUnresolved as error:
        return None if unresolved_ok else str(error)
    return None


def refusal_in(error: BaseException | None) -> EgressRefused | None:
    """The EgressRefused that caused ``error`` (a client's wrapper exception), if any."""
    seen = 0
    while error is not None and seen < 20:
        if isinstance(error, EgressRefused):
            return error
        error = error.__cause__ or error.__context__
        seen += 1
    return None


# --- connecting -------------------------------------------------------------------------


def egress_connect(
    host: str,
    port: int,
    *,
    timeout: Any = None,
    source_address: tuple[str, int] | None = None,
    socket_options: Iterable[tuple] | None = None,
) -> socket.socket:
    """A TCP socket to a checked address of ``host`` (each tried in order).

    Raises EgressRefused, EgressUnresolved, or the last connection's OSError.
    """
    addresses = checked_addresses(host, port)
    if timeout is not None and not isinstance(timeout, int | float):
        timeout = socket.getdefaulttimeout()  # urllib3's "default timeout" sentinel
    last_error: OSError | None = None
    for address in addresses:
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect((str(address), port))
        except OSError as error:
            sock.close()
            last_error = error
            continue
        return sock
    assert last_error is not None
    raise last_error


# --- requests and botocore (urllib3) ----------------------------------------------------


def _urllib3_classes():
    """urllib3 connection and pool classes that connect through :func:`egress_connect`."""
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
    from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

    class EgressConnectionMixin:
        def _new_conn(self) -> socket.socket:
            try:
                sock = egress_connect(
                    self._dns_host,
                    self.port,
                    timeout=self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except EgressUnresolved as error:
                raise NameResolutionError(self.host, self, socket.gaierror(str(error))) from error
            except TimeoutError as error:
                raise ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
                ) from error
            except OSError as error:
                raise NewConnectionError(
                    self, f"Failed to establish a new connection: {error}"
                ) from error
            sys.audit("http.client.connect", self, self.host, self.port)
            return sock

    class EgressHTTPConnection(EgressConnectionMixin, HTTPConnection):
        pass

    class EgressHTTPSConnection(EgressConnectionMixin, HTTPSConnection):
        pass

    class EgressHTTPConnectionPool(HTTPConnectionPool):
        ConnectionCls = EgressHTTPConnection

    class EgressHTTPSConnectionPool(HTTPSConnectionPool):
        ConnectionCls = EgressHTTPSConnection

    return EgressConnectionMixin, EgressHTTPConnectionPool, EgressHTTPSConnectionPool


def egress_session():
    """A ``requests`` session whose every connection goes to a checked address.

    It ignores proxy environment variables (``trust_env`` off): a proxy would connect to the
    name itself. Pass ``allow_redirects=False`` to its requests.
    """
    import requests
    from requests.adapters import HTTPAdapter

    _, http_pool, https_pool = _urllib3_classes()

    class EgressAdapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}

        def proxy_manager_for(self, proxy, **proxy_kwargs):
            raise EgressRefused("Outbound calls do not go through proxies.")

    session = requests.Session()
    session.trust_env = False
    adapter = EgressAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def egress_botocore_pin(client) -> None:
    """Make this botocore client (only this one) connect through :func:`egress_connect`.

    Its URLLib3Session's pool classes are replaced by subclasses of botocore's own
    (``AWSHTTPConnectionPool``/``AWSHTTPSConnectionPool``) whose connections connect to
    checked addresses; pools made before are dropped.
    """
    from botocore.awsrequest import (
        AWSHTTPConnection,
        AWSHTTPConnectionPool,
        AWSHTTPSConnection,
        AWSHTTPSConnectionPool,
    )

    session = client._endpoint.http_session
    if getattr(session, "_sourcebook_egress", False):
        return
    mixin = _urllib3_classes()[0]

    class EgressAWSHTTPConnection(mixin, AWSHTTPConnection):
        pass

    class EgressAWSHTTPSConnection(mixin, AWSHTTPSConnection):
        pass

    class EgressAWSHTTPConnectionPool(AWSHTTPConnectionPool):
        ConnectionCls = EgressAWSHTTPConnection

    class EgressAWSHTTPSConnectionPool(AWSHTTPSConnectionPool):
        ConnectionCls = EgressAWSHTTPSConnection

    classes = {"http": EgressAWSHTTPConnectionPool, "https": EgressAWSHTTPSConnectionPool}
    session._pool_classes_by_scheme = classes
    session._manager.pool_classes_by_scheme = classes
    session._manager.clear()
    for manager in session._proxy_managers.values():
        manager.pool_classes_by_scheme = classes
        manager.clear()
    session._sourcebook_egress = True


# --- httpx2 (the openai client) ---------------------------------------------------------


def _network_backend():
    import httpcore2
    from httpcore2._backends.sync import SyncStream

    class EgressNetworkBackend(httpcore2.SyncBackend):
        def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
            options = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1), *(socket_options or ())]
            try:
                sock = egress_connect(
                    host,
                    port,
                    timeout=timeout,
                    source_address=(local_address, 0) if local_address else None,
                    socket_options=options,
                )
            except EgressUnresolved as error:
                raise httpcore2.ConnectError(str(error)) from error
            except TimeoutError as error:
                raise httpcore2.ConnectTimeout(str(error)) from error
            except OSError as error:
                raise httpcore2.ConnectError(str(error)) from error
            return SyncStream(sock)

    return EgressNetworkBackend()


def egress_httpx_client(*, timeout: float):
    """An ``httpx2.Client`` (what ``openai`` uses) whose connections go to checked addresses.

    Redirects are not followed and proxy environment variables are ignored.
    """
    import httpcore2
    import httpx2

    transport = httpx2.HTTPTransport(trust_env=False)
    pool = transport._pool
    if not isinstance(pool, httpcore2.ConnectionPool):  # pragma: no cover
        raise RuntimeError("httpx2.HTTPTransport no longer keeps an httpcore2 ConnectionPool.")
    pool._network_backend = _network_backend()
    return httpx2.Client(
        transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
    )
