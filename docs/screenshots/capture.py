"""Regenerate the README's screenshots from a fresh demo.

Run from anywhere, with the project's virtualenv:

    .venv/bin/python docs/screenshots/capture.py

It does what ``make demo`` does, in a temporary var directory (``SOURCEBOOK_VAR_DIR``) so the
checkout's ``var/`` is never touched: migrate, loaddemo, publish the demo brand, then serve it
with ``runserver`` on a free loopback port. Playwright drives Debian's Chromium
(``/usr/bin/chromium``), signs in as the demo user and writes the PNGs next to this file at a
1280-pixel-wide viewport (full page, cropped to 1800 pixels on long pages). The server and the
temporary directory are removed afterwards; any failed step exits non-zero saying which.

The Chinese page needs a CJK font for Chromium (``apt-get install fonts-noto-cjk``); without
one the script stops rather than write a picture full of empty boxes.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = Path(__file__).resolve().parent
PYTHON = ROOT / ".venv" / "bin" / "python"
CHROMIUM = "/usr/bin/chromium"
BRAND_SLUG = "westlake-leaf"
USERNAME, PASSWORD = "demo", "sourcebook-demo"
VIEWPORT = {"width": 1280, "height": 900}
# Each picture at the README's width, and again as <name>-1920.png for a wide screen.
WIDE = 1920
MAX_HEIGHT = 1800
SERVER_TIMEOUT = 60
# Settings that would point the demo at the developer's services or files: left unset here.
SCRUBBED_ENV = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "SOURCEBOOK_ARTIFACT_ROOT",
    "STATIC_ROOT",
    "MEDIA_ROOT",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DJANGO_SETTINGS_MODULE",
)


class CaptureError(Exception):
    """A step failed; the message says which and why."""


def require_cjk_font() -> None:
    """Without a Chinese font Chromium draws the zh-Hans text as empty boxes."""
    try:
        found = subprocess.run(
            ["fc-list", ":lang=zh", "family"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except FileNotFoundError:
        found = ""
    if not found:
        raise CaptureError(
            "no Chinese font is installed, so zh-Hans text would show as boxes: "
            "apt-get install fonts-noto-cjk"
        )


def demo_environment(var_dir: Path, site: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env.update({"SOURCEBOOK_VAR_DIR": str(var_dir), "DJANGO_DEBUG": "1", "PYTHONUNBUFFERED": "1"})
    if site is not None:
        env["SOURCEBOOK_SERVE_SITE"] = str(site)
    return env


def manage(var_dir: Path, *args: str) -> None:
    """Run one manage.py command with the venv's python against the temporary var dir."""
    command = [str(PYTHON), "manage.py", *args]
    print(f"$ {' '.join(command[1:])}", flush=True)
    result = subprocess.run(
        command,
        cwd=ROOT,
        env=demo_environment(var_dir),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise CaptureError(f"manage.py {args[0]} failed (exit {result.returncode}):\n{output}")


def build_demo(var_dir: Path) -> Path:
    """Migrate, load and publish the demo brand; return the published site's directory."""
    site_dir = var_dir / "site" / BRAND_SLUG
    var_dir.mkdir(parents=True, exist_ok=True)
    manage(var_dir, "migrate", "--noinput", "-v", "0")
    manage(var_dir, "loaddemo")
    manage(var_dir, "publish", BRAND_SLUG, "--out", str(site_dir), "--reason", "screenshots")
    current = site_dir / "current"
    if not (current / "index.html").is_file():
        raise CaptureError(f"publish left no {current / 'index.html'}")
    return current


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(var_dir: Path, site: Path, port: int, log_path: Path) -> subprocess.Popen:
    command = [str(PYTHON), "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=demo_environment(var_dir, site),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def server_log_tail(log_path: Path, lines: int = 30) -> str:
    if not log_path.exists():
        return ""
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


def wait_until_ready(base: str, server: subprocess.Popen, log_path: Path) -> None:
    """Poll the admin login page until the server answers it."""
    deadline = time.monotonic() + SERVER_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise CaptureError(
                f"runserver exited with {server.returncode}:\n{server_log_tail(log_path)}"
            )
        try:
            with urllib.request.urlopen(f"{base}/admin/login/", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise CaptureError(
        f"runserver did not answer within {SERVER_TIMEOUT}s:\n{server_log_tail(log_path)}"
    )


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def visit(page: Page, url: str) -> None:
    """Open a page and refuse error pages and the login form."""
    response = page.goto(url)
    check_page(page, url, response.status if response else None)


def check_page(page: Page, what: str, status: int | None = None) -> None:
    if status is not None and status >= 400:
        raise CaptureError(f"{what} answered HTTP {status}")
    page.wait_for_load_state("networkidle")
    if "/admin/login/" in page.url:
        raise CaptureError(f"{what} sent us to the login page ({page.url})")
    if page.locator("#summary h1, .exception_value").count():
        raise CaptureError(f"{what} is a Django error page: {page.title()}")


def shoot(page: Page, name: str, *, whole: bool = True) -> Path:
    """The whole page (``whole``; cropped to MAX_HEIGHT pixels) or what the window shows,
    at 1280 pixels wide (``name``) and at 1920 (``name`` with ``-1920``).

    The viewport is stretched to the page's height rather than using Playwright's full-page
    mode, so the admin's full-height navigation sidebar reaches the bottom of the picture.
    """
    path = OUT_DIR / name
    for width, target in ((VIEWPORT["width"], path), (WIDE, path.with_stem(f"{path.stem}-1920"))):
        page.set_viewport_size({"width": width, "height": VIEWPORT["height"]})
        page.wait_for_timeout(200)
        if whole:
            height = page.evaluate("document.documentElement.scrollHeight")
            tall = max(VIEWPORT["height"], min(height, MAX_HEIGHT))
            page.set_viewport_size({"width": width, "height": tall})
            page.wait_for_timeout(200)  # let the layout settle at the new height
        page.screenshot(path=str(target), animations="disabled")
    page.set_viewport_size(VIEWPORT)
    return path


def log_in(page: Page, base: str) -> None:
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("input[type=submit]")
    if "/admin/login/" in page.url:
        raise CaptureError(f"could not sign in as {USERNAME!r}")


def open_first_product(page: Page, base: str) -> str:
    """Open the first Product's change form from the admin list; return its URL."""
    visit(page, f"{base}/admin/kb/entity/?primary_type=Product")
    link = page.locator("#result_list tbody tr th a").first
    if not link.count():
        raise CaptureError("the entity list shows no Product")
    with page.expect_navigation():
        link.click()
    check_page(page, "the product's change form")
    return page.url


def capture_entity(page: Page, base: str) -> tuple[Path, str, str]:
    """admin-entity.png; returns it, the product's slug and its English preview URL."""
    open_first_product(page, base)
    checks = page.locator("fieldset:has(h2:text-is('Check before publishing'))")
    most_used = page.locator("fieldset:has(h2:text-is('Most used'))")
    if not checks.count() or not most_used.count():
        raise CaptureError("the change form lacks the checks panel or the Most used fieldset")
    most_used.locator(".select2-container").first.wait_for(state="visible")
    slug = page.input_value("#id_slug")
    preview = checks.get_by_role("link", name="en", exact=True).first
    if not slug or not preview.count():
        raise CaptureError("the change form has no slug or no English preview link")
    preview_url = preview.get_attribute("href") or ""
    return shoot(page, "admin-entity.png"), slug, preview_url


def capture_preview(page: Page, base: str, preview_url: str) -> Path:
    visit(page, base + preview_url if preview_url.startswith("/") else preview_url)
    return shoot(page, "admin-preview.png")


def capture_schedule(page: Page, base: str) -> Path:
    visit(page, f"{base}/admin/kb/entity/")
    page.locator("#result_list tbody input.action-select").first.check()
    page.select_option("select[name=action]", "schedule")
    with page.expect_navigation():
        page.click("button[name=index]")
    check_page(page, "the schedule action")
    if not page.locator("input[name=go_live_at], [name^=go_live_at]").count():
        raise CaptureError("the schedule action did not show its intermediate page")
    return shoot(page, "admin-schedule.png")


def capture_offers(page: Page, base: str, product_url: str) -> Path:
    """admin-offers.png: a price that is no number, refused next to its input."""
    visit(page, product_url)
    page.fill("#id_offer__0__price", "abc")
    with page.expect_navigation():
        page.click("input[name=_continue]")
    offers = page.locator("fieldset:has(h2:text-is('Offers'))")
    error = offers.locator(".errorlist").first
    if not error.count():
        raise CaptureError("the price 'abc' was not refused at its input")
    error.scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, -140)")
    return shoot(page, "admin-offers.png", whole=False)


def capture_statements(page: Page, base: str, product_url: str) -> Path:
    """admin-facts.png: the product's facts, edited on its own page."""
    visit(page, product_url)
    group = page.locator("#facts-group")
    if not group.locator(".inline-related.has_original").count():
        raise CaptureError("the product's page does not show its facts to edit")
    group.locator("summary").first.click()
    group.scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, -20)")
    return shoot(page, "admin-facts.png", whole=False)


def capture_in_chinese(browser, base: str, product_url: str) -> Path:
    """admin-zh.png: an editor whose browser asks for Chinese sees the admin, and our own
    error next to a wrong value, in Chinese."""
    page = browser.new_page(viewport=VIEWPORT, locale="zh-CN")
    try:
        page.set_default_timeout(20_000)
        log_in(page, base)
        visit(page, product_url)
        page.fill("#id_p__gtin13", "6970123000018")  # a wrong check digit
        with page.expect_navigation():
            page.click("input[name=_continue]")
        error = page.locator(".errorlist").first
        if not error.count() or error.inner_text().isascii():
            raise CaptureError("the wrong GTIN was not refused in Chinese")
        error.scroll_into_view_if_needed()
        page.evaluate("window.scrollBy(0, -200)")
        return shoot(page, "admin-zh.png", whole=False)
    finally:
        page.close()


def capture_search(page: Page, base: str) -> Path:
    """admin-search.png: the entity list searched in Chinese."""
    visit(page, f"{base}/admin/kb/entity/?q=%E9%BE%99%E4%BA%95")  # 龙井
    if not page.locator("#result_list tbody tr").count():
        raise CaptureError("searching the entities for 龙井 found nothing")
    return shoot(page, "admin-search.png")


def capture_revision(page: Page, base: str, product_url: str) -> Path:
    """admin-revision.png: an edit (a new price) as a readable change, old and new."""
    visit(page, product_url)
    price = page.input_value("#id_offer__0__price")
    page.fill("#id_offer__0__price", f"{float(price) + 4:.2f}")
    page.fill("#id_message", "New season's price")
    with page.expect_navigation():
        page.click("input[name=_continue]")
    link = page.locator("a", has_text="compare with previous").first
    if not link.count():
        link = page.locator("a[href*='/compare/']").first
    if not link.count():
        raise CaptureError("the entity's revisions have no link to their changes")
    with page.expect_navigation():
        link.click()
    check_page(page, "the revision's changes")
    return shoot(page, "admin-revision.png")


def capture_releases(page: Page, base: str) -> Path:
    visit(page, f"{base}/admin/publishing/release/")
    return shoot(page, "admin-releases.png")


def capture_dashboard(page: Page, base: str) -> Path:
    visit(page, f"{base}/admin/kb/brand/")
    link = page.locator("#result_list td.field-dashboard a", has_text="Open").first
    if not link.count():
        raise CaptureError("the brand list has no dashboard link")
    with page.expect_navigation():
        link.click()
    check_page(page, "the brand dashboard")
    return shoot(page, "admin-dashboard.png")


def product_path(site: Path, slug: str, prefix: str = "") -> str:
    """The product page's URL path, found in the published site (e.g. /products/<slug>/)."""
    root = site / prefix if prefix else site
    for candidate in sorted(root.glob(f"*/{slug}/index.html")):
        return "/" + candidate.parent.relative_to(site).as_posix() + "/"
    raise CaptureError(f"no published page for {slug!r} under {root}")


def capture_product_pages(page: Page, base: str, site: Path, slug: str) -> list[Path]:
    shots = []
    for prefix, name in (("", "product-page.png"), ("zh-Hans", "product-page-zh.png")):
        visit(page, base + product_path(site, slug, prefix))
        shots.append(shoot(page, name))
    return shots


def capture_visibility(page: Page, base: str) -> list[Path]:
    """visibility-dashboard.png, once the visibility admin has a dashboard (else nothing)."""
    response = page.goto(f"{base}/admin/visibility/")
    if response is None or response.status == 404:
        return []
    check_page(page, "/admin/visibility/", response.status)
    link = page.locator("#content a[href*='dashboard']").first
    if link.count():
        with page.expect_navigation():
            link.click()
    else:
        response = page.goto(f"{base}/admin/visibility/dashboard/")
        if response is None or response.status == 404:
            print("capture: /admin/visibility/ has no dashboard yet; skipped", file=sys.stderr)
            return []
    check_page(page, "the visibility dashboard", response.status if response else None)
    return [shoot(page, "visibility-dashboard.png")]


def capture_all(base: str, site: Path) -> list[Path]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            page = browser.new_page(viewport=VIEWPORT, locale="en-US")
            page.set_default_timeout(20_000)
            log_in(page, base)
            entity, slug, preview_url = capture_entity(page, base)
            product_url = page.url
            steps: list[Callable[[], Path | list[Path]]] = [
                lambda: capture_search(page, base),
                lambda: capture_offers(page, base, product_url),
                lambda: capture_statements(page, base, product_url),
                lambda: capture_in_chinese(browser, base, product_url),
                lambda: capture_revision(page, base, product_url),
                lambda: capture_schedule(page, base),
                lambda: capture_releases(page, base),
                lambda: capture_dashboard(page, base),
                lambda: capture_preview(page, base, preview_url),
                lambda: capture_product_pages(page, base, site, slug),
                lambda: capture_visibility(page, base),
            ]
            shots = [entity]
            for step in steps:
                result = step()
                shots.extend(result if isinstance(result, list) else [result])
            return shots
        finally:
            browser.close()


def main() -> int:
    if not PYTHON.exists():
        print(f"capture: no virtualenv python at {PYTHON} (run `make install`)", file=sys.stderr)
        return 2
    work_dir = Path(tempfile.mkdtemp(prefix="sourcebook-screenshots-"))
    var_dir = work_dir / "var"  # like the checkout's var/: the dashboard shows this path
    server = None
    log_path = work_dir / "runserver.log"
    try:
        require_cjk_font()
        site = build_demo(var_dir)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(var_dir, site, port, log_path)
        wait_until_ready(base, server, log_path)
        shots = capture_all(base, site)
    except (CaptureError, PlaywrightError) as error:
        print(f"capture: {error}", file=sys.stderr)
        tail = server_log_tail(log_path)
        if tail:
            print(f"--- runserver log (last lines) ---\n{tail}", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            stop_server(server)
        shutil.rmtree(work_dir, ignore_errors=True)
    for shot in shots:
        print(f"wrote {shot.relative_to(ROOT)} ({shot.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
