"""No server-side reach from brand data: every outbound path goes through config.egress.

DNS answers are faked by replacing ``config.egress.resolve`` (ours); the HTTP clients are
real (requests, the openai client on httpx2, boto3). A canary listener on loopback records
every connection: a refused call must never reach it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.management import call_command

from config import egress
from publishing.forms import TargetForm
from publishing.models import Target, WebhookDelivery
from publishing.targets.directory import directory_root
from publishing.targets.errors import TargetConfigError
from publishing.targets.s3 import _listing, s3_storage
from publishing.webhooks import webhook_deliver
from tests import s3_server as moto_s3
from tests.s3_server import s3_server  # noqa: F401
from visibility.engines import engine_ask
from visibility.models import Engine
from visibility.scripted_engine import Reply, RuleScript, ScriptedEngine

SERVER_SECRET = "the-servers-own-secret-key-4242"
REFUSED = [
    ("127.0.0.1", "a loopback address"),
    ("::1", "a loopback address"),
    ("::ffff:127.0.0.1", "a loopback address (127.0.0.1 inside)"),
    ("10.0.0.1", "a private address"),
    ("169.254.169.254", "a link-local address"),
]
# TEST-NET-3: never answers. Python counts it as non-global (documentation), so the tests
# that need it to pass the check allow its network, as an operator would a private one.
PUBLIC = "203.0.113.10"
PUBLIC_NET = "203.0.113.0/24"


def shown(address: str) -> str:
    return str(ipaddress.ip_address(address))  # ::ffff:7f00:1 on Python 3.11


class Canary:
    """A TCP listener on loopback that counts connections and keeps what they sent."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.received = b""
        self._closed = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.settimeout(0.5)
            with contextlib.suppress(OSError):
                self.received += conn.recv(65536)
            conn.close()

    def close(self):
        self._closed = True
        self.sock.close()


@pytest.fixture
def canary():
    listener = Canary()
    yield listener
    listener.close()


@pytest.fixture
def dns(monkeypatch):
    """Fake DNS: ``dns[host] = [answer, …]`` (one list per call, the last one repeated)."""
    answers: dict[str, list[list[str]]] = {}
    calls: list[str] = []

    def fake_resolve(host, port):
        calls.append(host)
        if host not in answers:
            try:
                return [ipaddress.ip_address(host)]
            except ValueError:
                raise egress.EgressUnresolved(f"The host {host} does not resolve.") from None
        queue = answers[host]
        current = queue.pop(0) if len(queue) > 1 else queue[0]
        return [ipaddress.ip_address(a) for a in current]

    monkeypatch.setattr(egress, "resolve", fake_resolve)
    answers["calls"] = calls  # type: ignore[assignment]
    return answers


@pytest.fixture
def strict(settings, monkeypatch):
    settings.SOURCEBOOK_EGRESS_ALLOW = []
    settings.SOURCEBOOK_CREDENTIAL_ENV = []
    settings.SOURCEBOOK_WEBHOOK_TIMEOUT = (0.5, 0.5)
    settings.SOURCEBOOK_WEBHOOK_MAX_ATTEMPTS = 1
    monkeypatch.setenv("SECRET_KEY", SERVER_SECRET)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    return settings


def webhook_target(brand, url):
    # Created directly, as a row saved before the checks existed would be.
    return Target.objects.create(
        brand=brand, name="hook", kind=Target.Kind.WEBHOOK, config={"url": url}, secret="s3cret"
    )


def deliver(target) -> WebhookDelivery:
    delivery = WebhookDelivery.objects.create(
        target=target, event="test.event", payload={"n": 1}, state=WebhookDelivery.State.PENDING
    )
    webhook_deliver.delay(delivery.pk)
    delivery.refresh_from_db()
    return delivery


def engine_for(brand, url, **fields):
    fields = {"model": "m", "max_retries": 0, "timeout_seconds": 2, **fields}
    return Engine.objects.create(brand=brand, name="e", base_url=url, **fields)


def s3_target(brand, endpoint, **config):
    return Target.objects.create(
        brand=brand,
        name="bucket",
        kind=Target.Kind.S3,
        config={"bucket": "site", "endpoint_url": endpoint, **config},
    )


# --- the check ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",
        "http://0x7f.1/",
        "http://127.1/",
        "http://[::ffff:127.0.0.1]/",
        "http://0/",
        "http://localhost:8000/",
        "http://[::1]:8000/",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
def test_odd_literal_forms_are_refused_by_their_resolved_address(url, settings):
    settings.SOURCEBOOK_EGRESS_ALLOW = []
    problem = egress.egress_url_problem(url)
    assert problem is not None and "outbound calls go only to public addresses" in problem


def test_url_problem_messages(settings, dns):
    settings.SOURCEBOOK_EGRESS_ALLOW = []
    dns["hooks.example"] = [["127.0.0.1"]]
    assert egress.egress_url_problem("http://hooks.example/x") == (
        "The host hooks.example resolves to 127.0.0.1, a loopback address; outbound calls go "
        "only to public addresses (an operator can allow a host with SOURCEBOOK_EGRESS_ALLOW)."
    )
    assert egress.egress_url_problem("ftp://hooks.example/x") == (
        "The URL must start with http:// or https://."
    )
    assert egress.egress_url_problem("http:///x") == "The URL has no host."
    assert "does not resolve" in egress.egress_url_problem("https://nowhere.test/")
    assert egress.egress_url_problem("https://nowhere.test/", unresolved_ok=True) is None
    dns["mixed.example"] = [["93.184.215.14", "10.9.8.7"]]  # one bad address is enough to refuse
    assert "10.9.8.7, a private address" in egress.egress_url_problem("http://mixed.example/")


def test_the_allow_list_takes_names_ports_and_networks(settings, dns):
    dns["vllm.internal"] = [["10.1.2.3"]]
    settings.SOURCEBOOK_EGRESS_ALLOW = ["vllm.internal"]
    assert egress.egress_url_problem("http://vllm.internal:8000/v1") is None
    settings.SOURCEBOOK_EGRESS_ALLOW = ["10.1.0.0/16"]
    assert egress.egress_url_problem("http://vllm.internal:8000/v1") is None
    assert egress.egress_url_problem("http://10.2.0.1/") is not None
    settings.SOURCEBOOK_EGRESS_ALLOW = ["127.0.0.1:8765"]
    assert egress.egress_url_problem("http://127.0.0.1:8765/v1") is None
    assert egress.egress_url_problem("http://127.0.0.1:8766/v1") is not None
    settings.SOURCEBOOK_EGRESS_ALLOW = []
    assert egress.egress_url_problem("http://vllm.internal:8000/v1") is not None
    with egress.egress_allowing("vllm.internal:8000"):
        assert egress.egress_url_problem("http://vllm.internal:8000/v1") is None
    assert egress.egress_url_problem("http://vllm.internal:8000/v1") is not None


# --- every outbound path refuses, and never reaches the canary -----------------------------


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize(("address", "problem"), REFUSED)
def test_webhook_delivery_is_refused(brand, canary, dns, strict, address, problem, debug):
    strict.DEBUG = debug
    dns["hooks.test"] = [[address]]
    delivery = deliver(webhook_target(brand, f"http://hooks.test:{canary.port}/hook"))
    [attempt] = delivery.attempts.all()
    assert attempt.error.startswith(
        f"Refused: The host hooks.test resolves to {shown(address)}, {problem};"
    )
    assert attempt.will_retry is False
    assert delivery.state == WebhookDelivery.State.FAILED
    assert canary.connections == 0


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize(("address", "problem"), REFUSED)
def test_engine_ask_is_refused(brand, canary, dns, strict, address, problem, debug):
    strict.DEBUG = debug
    dns["engine.test"] = [[address]]
    reply = engine_ask(engine_for(brand, f"http://engine.test:{canary.port}/v1"), "Best tea?")
    assert not reply.ok
    assert f"The host engine.test resolves to {shown(address)}, {problem};" in reply.error
    assert canary.connections == 0


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize(("address", "problem"), REFUSED)
def test_s3_deploy_is_refused(brand, canary, dns, strict, address, problem, debug):
    strict.DEBUG = debug
    dns["s3.test"] = [[address]]
    target = s3_target(brand, f"http://s3.test:{canary.port}")
    with pytest.raises(
        TargetConfigError, match=re.escape(f"resolves to {shown(address)}, {problem}")
    ):
        s3_storage(target)
    assert canary.connections == 0


def test_s3_connections_are_pinned_to_the_checked_address(brand, canary, dns, strict, monkeypatch):
    # The config check sees a public address; the connection resolves again and is refused:
    # boto3's own resolution is never used.
    strict.SOURCEBOOK_EGRESS_ALLOW = [PUBLIC_NET]
    strict.SOURCEBOOK_CREDENTIAL_ENV = [moto_s3.ACCESS_KEY_ENV, moto_s3.SECRET_KEY_ENV]
    monkeypatch.setenv(moto_s3.ACCESS_KEY_ENV, moto_s3.ACCESS_KEY)
    monkeypatch.setenv(moto_s3.SECRET_KEY_ENV, moto_s3.SECRET_KEY)
    dns["s3.test"] = [[PUBLIC], ["127.0.0.1"]]
    target = s3_target(
        brand,
        f"http://s3.test:{canary.port}",
        access_key_env=moto_s3.ACCESS_KEY_ENV,
        secret_key_env=moto_s3.SECRET_KEY_ENV,
    )
    storage = s3_storage(target)
    with pytest.raises(Exception, match="resolves to 127.0.0.1, a loopback address"):
        _listing(storage)
    assert canary.connections == 0


def test_dns_rebinding_never_reaches_loopback(brand, canary, dns, strict):
    # Webhooks: one resolution per attempt, and the socket goes to that (public) address.
    strict.SOURCEBOOK_EGRESS_ALLOW = [PUBLIC_NET]
    dns["hooks.test"] = [[PUBLIC], ["127.0.0.1"]]
    delivery = deliver(webhook_target(brand, f"http://hooks.test:{canary.port}/hook"))
    [attempt] = delivery.attempts.all()
    assert attempt.will_retry is False  # the one attempt allowed
    assert "127.0.0.1" not in attempt.error
    assert dns["calls"] == ["hooks.test"]
    # Engines: the early check sees the public address, the connection the rebound one.
    dns["engine.test"] = [[PUBLIC], ["127.0.0.1"]]
    reply = engine_ask(engine_for(brand, f"http://engine.test:{canary.port}/v1"), "Best tea?")
    assert not reply.ok and "resolves to 127.0.0.1, a loopback address" in reply.error
    assert canary.connections == 0


# --- allowed by the operator, the pinned connections reach loopback -------------------------


class Receiver:
    def __init__(self):
        self.hosts: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                receiver.hosts.append(self.headers["Host"])
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_allowed_hosts_are_reached_through_the_pinned_connections(
    brand,
    dns,
    strict,
    s3_server,  # noqa: F811
):
    # "minio": a name without a dot, so moto takes the bucket from the path.
    dns["hooks.test"] = dns["engine.test"] = dns["minio"] = [["127.0.0.1"]]
    strict.SOURCEBOOK_EGRESS_ALLOW = ["hooks.test", "engine.test", "minio"]
    receiver = Receiver()
    try:
        delivery = deliver(webhook_target(brand, f"http://hooks.test:{receiver.port}/hook"))
    finally:
        receiver.close()
    assert delivery.state == WebhookDelivery.State.DELIVERED
    assert receiver.hosts == [f"hooks.test:{receiver.port}"]  # the name, not the address

    with ScriptedEngine(RuleScript([], default=Reply("Acme Tea."))) as server:
        reply = engine_ask(engine_for(brand, f"http://engine.test:{server.port}/v1"), "Tea?")
    assert reply.ok, reply.error
    assert reply.content == "Acme Tea."

    strict.SOURCEBOOK_CREDENTIAL_ENV = [moto_s3.ACCESS_KEY_ENV, moto_s3.SECRET_KEY_ENV]
    os.environ[moto_s3.ACCESS_KEY_ENV] = moto_s3.ACCESS_KEY
    os.environ[moto_s3.SECRET_KEY_ENV] = moto_s3.SECRET_KEY
    try:
        port = s3_server.rsplit(":", 1)[1]
        bucket = f"sb-egress-{os.getpid()}"
        moto_s3.s3_client(s3_server).create_bucket(Bucket=bucket)
        target = s3_target(
            brand,
            f"http://minio:{port}",
            bucket=bucket,
            access_key_env=moto_s3.ACCESS_KEY_ENV,
            secret_key_env=moto_s3.SECRET_KEY_ENV,
        )
        storage = s3_storage(target)
        storage.bucket.Object("llms.txt").put(Body=b"# Acme")
        assert _listing(storage) == {"llms.txt": 6}
    finally:
        del os.environ[moto_s3.ACCESS_KEY_ENV], os.environ[moto_s3.SECRET_KEY_ENV]
    assert "minio" in dns["calls"]


# --- credentials ------------------------------------------------------------------------


def target_form(brand, kind, config, **extra):
    data = {"brand": brand.pk, "name": "t", "kind": kind, "enabled": "on",
            "config": json.dumps(config), "secret": "", **extra}  # fmt: skip
    return TargetForm(data=data)


def test_credentials_may_name_only_allowed_variables(brand, canary, dns, strict):
    dns["s3.test"] = dns["engine.test"] = [["127.0.0.1"]]
    strict.SOURCEBOOK_EGRESS_ALLOW = ["s3.test", "engine.test"]  # the canary is reachable
    config = {"bucket": "site", "endpoint_url": f"http://s3.test:{canary.port}",
              "access_key_env": "PATH", "secret_key_env": "SECRET_KEY"}  # fmt: skip
    form = target_form(brand, "s3", config)
    assert not form.is_valid()
    [message] = form.errors["config"]
    assert 'config key "access_key_env" names PATH' in message
    assert "SOURCEBOOK_CREDENTIAL_ENV" in message
    with pytest.raises(TargetConfigError, match="SOURCEBOOK_CREDENTIAL_ENV"):
        s3_storage(s3_target(brand, f"http://s3.test:{canary.port}", **{
            k: config[k] for k in ("access_key_env", "secret_key_env")}))  # fmt: skip

    engine = Engine(brand=brand, name="e", base_url="https://93.184.215.14/v1", model="m",
                    api_key_env="SECRET_KEY")  # fmt: skip
    with pytest.raises(ValidationError) as error:
        engine.full_clean()
    assert "SOURCEBOOK_CREDENTIAL_ENV" in str(error.value.message_dict["api_key_env"])
    reply = engine_ask(
        engine_for(brand, f"http://engine.test:{canary.port}/v1", api_key_env="SECRET_KEY"), "?"
    )
    assert not reply.ok and "api_key_env names SECRET_KEY" in reply.error
    assert canary.connections == 0
    assert SERVER_SECRET.encode() not in canary.received

    strict.SOURCEBOOK_CREDENTIAL_ENV = ["SB_R2_KEY", "SB_R2_SECRET"]
    config.update(access_key_env="SB_R2_KEY", secret_key_env="SB_R2_SECRET")
    assert target_form(brand, "s3", config).is_valid()


def test_engine_urls_are_checked_when_saved(brand, dns, strict):
    dns["engine.test"] = [["169.254.169.254"]]
    engine = Engine(brand=brand, name="e", base_url="http://engine.test/v1", model="m")
    with pytest.raises(ValidationError) as error:
        engine.full_clean()
    assert "a link-local address" in str(error.value.message_dict["base_url"])


def test_the_webhook_secret_is_write_only(brand, dns, strict):
    dns["hooks.test"] = [["93.184.215.14"]]
    target = webhook_target(brand, "https://hooks.test/x")
    form = TargetForm(instance=target)
    assert "s3cret" not in form.as_p()
    data = {"brand": brand.pk, "name": "hook", "kind": "webhook", "enabled": "on",
            "config": json.dumps({"url": "https://hooks.test/y"}), "secret": ""}  # fmt: skip
    form = TargetForm(data=data, instance=target)
    assert form.is_valid(), form.errors
    assert form.save().secret == "s3cret"
    dns["hooks.test"] = [["10.0.0.1"]]
    form = TargetForm(data=data, instance=target)
    assert not form.is_valid() and "a private address" in form.errors["config"][0]


# --- directory targets ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"path": "/srv/other-brand"}, 'config key "path" is not accepted'),
        ({"folder": "/abs/path"}, "is not a folder name"),
        ({"folder": "../other"}, "is not a folder name"),
        ({"folder": "a/b"}, "is not a folder name"),
        ({"folder": ".."}, "is not a folder name"),
        ({"folder": "."}, "is not a folder name"),
        ({"folder": 7}, "must be a string"),
    ],
)
def test_brand_directory_targets_stay_in_their_folder(brand, settings, tmp_path, config, problem):
    settings.SOURCEBOOK_SITE_ROOT = tmp_path / "site"
    form = target_form(brand, "directory", config)
    assert not form.is_valid()
    assert problem in form.errors["config"][0]
    target = Target.objects.create(brand=brand, name="d", kind="directory", config=config)
    with pytest.raises(TargetConfigError, match=problem):
        directory_root(target)


def test_folders_of_two_brands_never_overlap_and_symlinks_cannot_escape(
    brand, other_brand, settings, tmp_path
):
    settings.SOURCEBOOK_SITE_ROOT = tmp_path / "site"
    form = target_form(brand, "directory", {"folder": "www"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["config"] == {"folder": "www"}
    mine = Target.objects.create(brand=brand, name="d", kind="directory", config={})
    www = Target.objects.create(brand=brand, name="w", kind="directory", config={"folder": "www"})
    theirs = Target.objects.create(brand=other_brand, name="d", kind="directory", config={})
    assert directory_root(mine) == tmp_path / "site" / "acme-tea"
    assert directory_root(www) == tmp_path / "site" / "acme-tea" / "www"
    assert directory_root(theirs) == tmp_path / "site" / "other"

    (tmp_path / "site" / "acme-tea").mkdir(parents=True)
    (tmp_path / "site" / "other").mkdir()
    (tmp_path / "site" / "acme-tea" / "escape").symlink_to(tmp_path / "site" / "other")
    sneaky = Target.objects.create(
        brand=brand, name="s", kind="directory", config={"folder": "escape"}
    )
    with pytest.raises(TargetConfigError, match="outside the brand's folder"):
        directory_root(sneaky)


def test_publish_out_still_deploys_anywhere_the_operator_says(brand, settings, tmp_path):
    settings.SOURCEBOOK_SITE_ROOT = tmp_path / "site"
    out = tmp_path / "elsewhere" / "acme"
    call_command("publish", "acme-tea", "--out", str(out), stdout=StringIO(), stderr=StringIO())
    assert (out / "current" / "llms.txt").is_file()
    target = Target.objects.get(brand=brand, kind="directory")
    assert target.operator_path == str(out.resolve()) and target.config == {}
    assert directory_root(target) == Path(str(out.resolve()))
    assert "operator_path" not in TargetForm.base_fields


def test_the_migration_moves_only_the_command_lines_paths_to_operator_path(brand):
    """Paths `publish --out` set move; a path a brand user typed stays, refused at deploy."""
    from importlib import import_module

    migration = import_module("publishing.migrations.0005_target_operator_path")
    made_by_cli = Target.objects.create(
        brand=brand, name="directory /srv/www/acme", kind="directory",
        config={"path": "/srv/www/acme"},
    )  # fmt: skip
    typed = Target.objects.create(
        brand=brand, name="old", kind="directory", config={"path": "/srv/www/other-brand"}
    )
    migration.path_to_operator_path(apps, None)
    made_by_cli.refresh_from_db()
    typed.refresh_from_db()
    assert made_by_cli.operator_path == "/srv/www/acme" and made_by_cli.config == {}
    assert typed.operator_path == "" and typed.config == {"path": "/srv/www/other-brand"}
    with pytest.raises(TargetConfigError):
        directory_root(typed)
