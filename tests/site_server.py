"""A website on loopback for crawling tests: files from a directory, a few dynamic routes,
and a log of what was asked for (path and User-Agent)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".xml": "application/xml",
    ".md": "text/markdown; charset=utf-8",
    ".json": "application/json",
    ".jsonld": "application/ld+json",
}
# Files whose "{origin}" is replaced by the server's own address (it has a new port each run).
TEMPLATED = (".html", ".txt", ".xml")

Route = Callable[[BaseHTTPRequestHandler, str], None]


@dataclass
class SiteServer:
    root: Path
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, user agent)
    origin: str = ""

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]


def redirect(to: str, status: int = 302) -> Route:
    def route(handler: BaseHTTPRequestHandler, origin: str) -> None:
        handler.send_response(status)
        handler.send_header("Location", to)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return route


def huge_page(size: int) -> Route:
    """An HTML page of ``size`` bytes, streamed."""

    def route(handler: BaseHTTPRequestHandler, origin: str) -> None:
        head = b"<!doctype html><html lang='en'><head><title>Everything</title></head><body>"
        row = b"<p>Another tea, and another, and another: the whole catalogue on one page.</p>\n"
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html; charset=utf-8")
        handler.send_header("Content-Length", str(size))
        handler.end_headers()
        sent = 0
        try:
            handler.wfile.write(head)
            sent += len(head)
            while sent + len(row) <= size:
                handler.wfile.write(row)
                sent += len(row)
            handler.wfile.write(b" " * (size - sent))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the crawler stopped reading: what it should do

    return route


@contextmanager
def site_served(root: Path, routes: dict[str, Route] | None = None) -> Iterator[SiteServer]:
    site = SiteServer(root=Path(root), routes=dict(routes or {}))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            path = unquote(urlsplit(self.path).path)
            site.requests.append((path, self.headers.get("User-Agent", "")))
            if path in site.routes:
                site.routes[path](self, site.origin)
                return
            file = (site.root / path.lstrip("/")).resolve()
            if site.root.resolve() not in file.parents and file != site.root.resolve():
                self.send_error(404)
                return
            if file.is_dir():
                file = file / "index.html"
            if not file.is_file():
                self.send_error(404)
                return
            body = file.read_bytes()
            if file.suffix in TEMPLATED:
                body = body.replace(b"{origin}", site.origin.encode())
            self.send_response(200)
            self.send_header(
                "Content-Type", CONTENT_TYPES.get(file.suffix, "application/octet-stream")
            )
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    site.origin = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
