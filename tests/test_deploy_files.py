"""deploy/ as an operator runs it: the image holds the whole application, compose passes every
setting, the web healthcheck tells a healthy stack from a broken one, TLS, systemd units, and
the command that creates a brand's directory target.

No Docker engine is needed: the image's files are assembled from deploy/Dockerfile's COPY lines
and .dockerignore and run with this venv's dependencies only (never the checkout itself)."""

import fnmatch
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import CommandError, call_command

from kb.services.brands import brand_create
from publishing.models import Target
from tests.test_celery_and_settings import database_url_for_tests

BASE_DIR = Path(settings.BASE_DIR)
DEPLOY = BASE_DIR / "deploy"
REQUIRED = os.environ.get("SOURCEBOOK_REQUIRE_SERVICES") == "1"
SITE_PACKAGES = sysconfig.get_paths()["purelib"]
APP_SERVICES = ("migrate", "web", "worker", "webhooks", "beat")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def strong_secret() -> str:
    return secrets.token_urlsafe(60)


# --- the image, without Docker ---------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            instructions.append((word.upper(), rest.strip()))
    return instructions


def dockerignore_patterns() -> list[tuple[bool, str]]:
    """(negated, pattern) from .dockerignore, in order."""
    patterns = []
    for line in (BASE_DIR / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        patterns.append((negated, os.path.normpath(pattern)))
    return patterns


def pattern_regex(pattern: str) -> re.Pattern:
    """Docker's matching: * and ? within one path segment, ** across segments."""
    parts = []
    for piece in re.split(r"(\*\*/?|\*|\?)", pattern):
        if piece.startswith("**"):
            parts.append("(?:.*/)?" if piece.endswith("/") else ".*")
        elif piece == "*":
            parts.append("[^/]*")
        elif piece == "?":
            parts.append("[^/]")
        else:
            parts.append(re.escape(piece))
    return re.compile("".join(parts) + r"\Z")


def ignored(relative: str, patterns) -> bool:
    """Whether .dockerignore keeps ``relative`` (or a directory above it) out of the context."""
    result = False
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for negated, pattern in patterns:
        regex = pattern_regex(pattern)
        if any(regex.match(prefix) for prefix in prefixes):
            result = not negated
    return result


def build_context() -> list[str]:
    """The files of the build context: the repository minus .dockerignore."""
    patterns = dockerignore_patterns()
    files = []
    for directory, dirnames, filenames in os.walk(BASE_DIR):
        rel_dir = os.path.relpath(directory, BASE_DIR)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = [d for d in dirnames if not ignored(rel_dir + d, patterns)]
        files += [rel_dir + f for f in filenames if not ignored(rel_dir + f, patterns)]
    return sorted(files)


def assemble_image(tree: Path) -> dict[str, str]:
    """Copy what the Dockerfile's COPY lines copy (from the context) to ``tree`` (its WORKDIR);
    the ENV the Dockerfile sets, returned."""
    context = build_context()
    workdir = "/"
    env: dict[str, str] = {}
    for instruction, args in dockerfile_instructions():
        if instruction == "WORKDIR":
            workdir = args
        elif instruction == "ENV":
            for item in shlex.split(args):
                name, _, value = item.partition("=")
                env[name] = value
        elif instruction in ("COPY", "ADD"):
            words = [w for w in shlex.split(args) if not w.startswith("--")]
            assert not any(w.startswith("--from") for w in shlex.split(args)), args
            *sources, dest = words
            dest_path = dest if dest.startswith("/") else os.path.join(workdir, dest)
            assert dest_path.startswith(workdir), f"COPY outside WORKDIR {workdir}: {args}"
            target = tree / os.path.relpath(dest_path, workdir)
            into_directory = dest.endswith("/") or len(sources) > 1 or dest in (".", "./")
            for source in map(os.path.normpath, sources):
                if source == ".":  # the context's contents
                    pairs = [(f, target / f) for f in context]
                elif any(f.startswith(source + "/") for f in context):  # a directory's contents
                    pairs = [
                        (f, target / os.path.relpath(f, source))
                        for f in context
                        if f.startswith(source + "/")
                    ]
                else:  # files (or a pattern)
                    pairs = [
                        (f, target / Path(f).name if into_directory else target)
                        for f in context
                        if fnmatch.fnmatchcase(f, source)
                    ]
                assert pairs, f"COPY {source}: not in the build context (.dockerignore?)"
                for file, destination in pairs:
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(BASE_DIR / file, destination)
    assert workdir != "/", "the Dockerfile sets no WORKDIR"
    return env


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """The image's /app as a directory, and the environment its processes get here."""
    root = tmp_path_factory.mktemp("image")
    tree = root / "app"
    tree.mkdir()
    image_env = assemble_image(tree)
    state = root / "state"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "DJANGO", "SOURCEBOOK", "DATABASE", "CELERY"))
    }
    env.update(image_env)
    env.update(
        {
            # The image's paths, moved to writable places here.
            "SOURCEBOOK_VAR_DIR": str(state / "var"),
            "SOURCEBOOK_ARTIFACT_ROOT": str(state / "artifacts"),
            "MEDIA_ROOT": str(state / "media"),
            "SOURCEBOOK_SITE_ROOT": str(state / "site"),
            "STATIC_ROOT": str(state / "static"),
            # The image's code, then the installed dependencies; with `python -S` no .pth file
            # runs, so the editable install of this checkout cannot answer any import.
            "PYTHONPATH": f"{tree}{os.pathsep}{SITE_PACKAGES}",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return {"tree": tree, "env": env, "image_env": image_env}


def run_in_image(image, *args, env=None, timeout=120):
    return subprocess.run(
        [sys.executable, "-S", *args],
        cwd=image["tree"],
        env={**image["env"], **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_isolation_hides_the_checkout(tmp_path):
    """Control: with the same interpreter flags, nothing of this checkout is importable."""
    result = subprocess.run(
        [sys.executable, "-S", "-c", "import visibility"],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": SITE_PACKAGES},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "No module named 'visibility'" in result.stderr


def test_the_image_holds_every_file_of_the_application(image):
    tree = image["tree"]
    tracked = subprocess.run(
        ["git", "ls-files", "manage.py", "config", "kb", "publishing", "visibility", "templates"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    missing = [f for f in tracked if (BASE_DIR / f).exists() and not (tree / f).exists()]
    assert not missing, f"not in the image: {missing[:20]}"
    # Nothing that must stay out: the checkout's state, secrets and development files.
    for unwanted in (".git", ".venv", "var", "tests", "docs", "deploy/.env"):
        assert not (tree / unwanted).exists(), unwanted
    assert image["image_env"]["PYTHONPATH"] == "/app"


def test_the_image_passes_djangos_checks_in_production_settings(image):
    env = {"DJANGO_DEBUG": "0", "SECRET_KEY": strong_secret(), "ALLOWED_HOSTS": "www.example.com"}
    result = run_in_image(image, "manage.py", "check", "--deploy", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."


def test_the_image_imports_every_task_module_and_its_templates(image):
    code = """
import django
django.setup()
from pathlib import Path
from django.conf import settings
import kb.tasks, publishing.tasks, visibility.tasks, config.gunicorn, config.wsgi
from config.celery import app
from kb.demo_brand import DEMO_DIR
from publishing.render.templates import site_templates
import visibility
app.loader.import_default_modules()
assert Path(visibility.__file__).is_relative_to(Path.cwd()), visibility.__file__
assert Path(settings.BASE_DIR) == Path.cwd(), settings.BASE_DIR
assert (DEMO_DIR / "facts.json").is_file(), DEMO_DIR
site_templates().get_template("site/base.html")
print(" ".join(sorted(app.tasks)))
"""
    env = {"DJANGO_DEBUG": "0", "SECRET_KEY": strong_secret(), "ALLOWED_HOSTS": "www.example.com"}
    result = run_in_image(image, "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    tasks = set(result.stdout.split())
    assert set(settings.CELERY_TASK_ROUTES) <= tasks
    assert {"kb.tasks.publish_scheduled", "visibility.resume_stalled_runs"} <= tasks
    # The worker's command line loads the app from the image too.
    result = run_in_image(image, "-m", "celery", "-A", "config", "report", env=env)
    assert result.returncode == 0, result.stderr


# --- compose ---------------------------------------------------------------------------------


def compose_file() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def env_example() -> dict[str, str]:
    values = {}
    for line in (DEPLOY / "sourcebook.env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value
    return values


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default}, ${NAME:?error} and $$."""

    def one(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group(1), match.group(2), match.group(3)
        current = variables.get(name, "")
        if op == ":?" and not current:
            raise AssertionError(f"compose would refuse: {arg}")
        if op == ":-" and not current:
            return arg
        return current

    return re.sub(r"\$\$|\$\{(\w+)(?:(:[-?])([^}]*))?\}", one, value)


def compose_environment(service: str, dotenv: dict[str, str]) -> dict[str, str]:
    """What a service's process gets: env_file (deploy/.env), then `environment:`."""
    spec = compose_file()["services"][service]
    assert spec["env_file"] == ".env"
    env = dict(dotenv)
    env.update({k: interpolate(str(v), dotenv) for k, v in spec["environment"].items()})
    return env


def test_every_app_service_reads_the_env_file_and_waits_for_migrate():
    services = compose_file()["services"]
    for name in APP_SERVICES:
        spec = services[name]
        assert spec["env_file"] == ".env", name
        assert spec["environment"]["DATABASE_URL"].endswith("@postgres:5432/sourcebook"), name
        assert spec["environment"]["CELERY_BROKER_URL"] == "redis://redis:6379/0", name
        if name != "migrate":
            assert spec["depends_on"]["migrate"] == {
                "condition": "service_completed_successfully"
            }, name
    migrate = services["migrate"]["command"]
    assert "migrate --noinput" in migrate and "collectstatic --noinput" in migrate
    # The variables the operator found missing are in the example, so in every service.
    example = env_example()
    for name in (
        "SOURCEBOOK_ENCRYPTION_KEYS", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_USE_TLS",
        "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD", "DEFAULT_FROM_EMAIL", "SECURE_SSL_REDIRECT",
        "SOURCEBOOK_EGRESS_ALLOW", "SOURCEBOOK_CREDENTIAL_ENV", "SOURCEBOOK_SITE_ROOT",
        "SECRET_KEY", "ALLOWED_HOSTS", "POSTGRES_PASSWORD",
    ):  # fmt: skip
        assert name in example, name
    assert "deploy/.env" in (BASE_DIR / ".gitignore").read_text().split()


def test_workers_consume_every_queue():
    queues: set[str] = set()
    for spec in compose_file()["services"].values():
        command = spec.get("command", "")
        if isinstance(command, str) and " worker " in command:
            queues |= set(re.search(r"-Q (\S+)", command).group(1).split(","))
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} | {"celery"}
    assert queues == routed == {"celery", "publishing", "webhooks", "visibility"}
    # The systemd worker's examples cover them all too.
    unit = (DEPLOY / "systemd" / "sourcebook-worker@.service").read_text()
    examples = re.findall(r"sourcebook-worker@([\w,]+)", unit)
    assert set(",".join(examples).split(",")) >= routed


def test_gunicorn_takes_its_settings_from_config_gunicorn_everywhere():
    form = "gunicorn config.wsgi -c python:config.gunicorn "
    cmd = next(args for word, args in dockerfile_instructions() if word == "CMD")
    assert " ".join(yaml.safe_load(cmd)).startswith(form)
    assert compose_file()["services"]["web"]["command"].startswith(form)
    web = (DEPLOY / "systemd" / "sourcebook-web.service").read_text()
    assert f"ExecStart=/opt/sourcebook/.venv/bin/{form}" in web
    assert (BASE_DIR / "config" / "gunicorn.py").is_file()


def test_systemd_units_migrate_and_collect_static_before_the_app():
    units = DEPLOY / "systemd"
    migrate = (units / "sourcebook-migrate.service").read_text()
    assert "Type=oneshot" in migrate and "RemainAfterExit=yes" in migrate
    assert "manage.py migrate --noinput" in migrate
    assert "manage.py collectstatic --noinput" in migrate
    for name in ("sourcebook-web.service", "sourcebook-mcp.service", "sourcebook-worker@.service",
                 "sourcebook-beat.service"):  # fmt: skip
        text = (units / name).read_text()
        assert "Requires=sourcebook-migrate.service" in text, name
        assert re.search(r"^After=sourcebook-migrate\.service", text, re.M), name
        assert "EnvironmentFile=/etc/sourcebook/sourcebook.env" in text, name


def test_every_setting_read_from_the_environment_is_documented():
    names = set(
        re.findall(
            r"""(?:environ\.get|env_bool|env_list)\(\s*["']([A-Z_]+)["']""",
            (BASE_DIR / "config" / "settings.py").read_text(),
        )
    )
    names |= {"SOURCEBOOK_ENCRYPTION_KEYS"}  # read by visibility.secrets
    readme = (DEPLOY / "README.md").read_text()
    undocumented = sorted(name for name in names if f"`{name}`" not in readme)
    assert not undocumented, f"not in deploy/README.md's environment table: {undocumented}"


@pytest.fixture
def compose():
    found = shutil.which("docker-compose")
    if found is None:
        if REQUIRED:
            pytest.fail("docker-compose is not installed (apt-get install docker-compose)")
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    return found


def compose_copy(tmp_path: Path, dotenv: str | None) -> Path:
    """deploy/ (and an empty build context) in a temporary directory, with .env made from
    the example: never a deploy/.env in the checkout."""
    shutil.copytree(DEPLOY, tmp_path / "deploy", ignore=shutil.ignore_patterns(".env", "certs"))
    if dotenv is not None:
        (tmp_path / "deploy" / ".env").write_text(dotenv)
    return tmp_path / "deploy"


def run_compose(compose, deploy: Path, *args, files=("docker-compose.yml",)):
    command = [compose]
    for file in files:
        command += ["-f", str(deploy / file)]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in env_example() and not k.startswith("COMPOSE_")
    }
    return subprocess.run(
        [*command, *args], cwd=deploy, env=env, capture_output=True, text=True, timeout=60
    )


def test_compose_validates_with_an_env_file_made_from_the_example(compose, tmp_path):
    example = (DEPLOY / "sourcebook.env.example").read_text()
    deploy = compose_copy(tmp_path, example)
    result = run_compose(compose, deploy, "config")
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)["services"]
    dotenv = env_example()
    for name in APP_SERVICES:
        environment = resolved[name]["environment"]
        # Every variable of the example reaches every app service; compose's wiring wins.
        assert set(dotenv) <= set(environment), name
        assert environment == {k: str(v) for k, v in compose_environment(name, dotenv).items()}, (
            name
        )
        assert environment["DATABASE_URL"] == (
            f"postgres://sourcebook:{dotenv['POSTGRES_PASSWORD']}@postgres:5432/sourcebook"
        )
        assert environment["EMAIL_HOST"] == dotenv["EMAIL_HOST"]
    assert resolved["nginx"]["environment"]["SOURCEBOOK_TLS"] == "0"
    # TLS: the override file, and COMPOSE_FILE from the example's .env (no -f) selects it.
    for files in (("docker-compose.yml", "docker-compose.tls.yml"), ()):
        result = run_compose(compose, deploy, "config", files=files)
        assert result.returncode == 0, result.stderr
        nginx = yaml.safe_load(result.stdout)["services"]["nginx"]
        assert nginx["environment"]["SOURCEBOOK_TLS"] == "1", files
        assert {p["target"] for p in nginx["ports"]} == {80, 443}, files
        assert any(v.endswith(":/etc/nginx/certs:ro") for v in nginx["volumes"]), files
    # Without its secrets compose refuses, naming the one missing.
    deploy = compose_copy(tmp_path / "missing", re.sub(r"(?m)^SECRET_KEY=.*$", "", example))
    result = run_compose(compose, deploy, "config")
    assert result.returncode != 0 and "set SECRET_KEY" in result.stderr


# --- the web healthcheck, against gunicorn started as compose starts it ----------------------


def wait_until(predicate, timeout: float = 40) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    return False


def status_of(url: str, headers: dict) -> int:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def answered(url: str) -> bool:
    try:
        return status_of(url, {}) > 0
    except (OSError, urllib.error.URLError):  # refused, reset or timed out: not yet
        return False


class Web:
    """The compose web service's command, on a free loopback port, from the image's files."""

    def __init__(self, image, env: dict[str, str], log: Path):
        self.port = free_port()
        self.image, self.env = image, env
        web = compose_file()["services"]["web"]
        command = shlex.split(web["command"])
        assert command[0] == "gunicorn" and "0.0.0.0:8000" in command
        command = [a.replace("0.0.0.0:8000", f"127.0.0.1:{self.port}") for a in command]
        self.log = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-S", "-m", *command],
            cwd=image["tree"],
            env={**image["env"], **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.healthcheck = web["healthcheck"]["test"]

    def answers(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), 1).close()
        except OSError:
            return self.process.poll() is not None  # dead: stop waiting
        return True

    def check(self) -> subprocess.CompletedProcess:
        """compose's healthcheck command, as docker runs it in the container."""
        kind, program, *args = self.healthcheck
        assert kind == "CMD" and program == "python"
        args = [a.replace("127.0.0.1:8000", f"127.0.0.1:{self.port}") for a in args]
        return subprocess.run(
            [sys.executable, "-S", *args],
            cwd=self.image["tree"],
            env={**self.image["env"], **self.env},
            capture_output=True,
            text=True,
            timeout=30,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


@pytest.mark.django_db(transaction=True)
def test_web_healthcheck_tells_a_healthy_stack_from_a_broken_one(image, tmp_path):
    if REQUIRED and not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        pytest.fail("SOURCEBOOK_REQUIRE_SERVICES=1 but DATABASE_URL is not PostgreSQL")
    broker = settings.CELERY_BROKER_URL
    if REQUIRED and not broker:
        pytest.fail("SOURCEBOOK_REQUIRE_SERVICES=1 but CELERY_BROKER_URL is not set")
    dotenv = env_example()
    env = compose_environment("web", dotenv)
    assert env["DJANGO_DEBUG"] == "0" and env["SECURE_SSL_REDIRECT"] == "1"
    env.update(
        {
            # This machine's services instead of compose's postgres and redis.
            "DATABASE_URL": database_url_for_tests(),
            "CELERY_BROKER_URL": broker,
            "CELERY_RESULT_BACKEND": broker,
            # The example's placeholder is (rightly) refused as too weak.
            "SECRET_KEY": strong_secret(),
            # Paths: the image fixture's writable ones.
            **{
                k: image["env"][k]
                for k in (
                    "SOURCEBOOK_ARTIFACT_ROOT",
                    "SOURCEBOOK_SITE_ROOT",
                    "STATIC_ROOT",
                    "MEDIA_ROOT",
                    "SOURCEBOOK_VAR_DIR",
                )
            },  # fmt: skip
        }
    )
    healthy = Web(image, env, tmp_path / "web.log")
    try:
        assert wait_until(healthy.answers), "gunicorn did not start"
        assert healthy.process.poll() is None, (tmp_path / "web.log").read_text()
        assert wait_until(lambda: healthy.check().returncode == 0, timeout=30), (
            healthy.check().stderr + (tmp_path / "web.log").read_text()
        )
        # Real traffic keeps Django's production checks: an unknown host is refused and
        # plain http is redirected to https.
        base = f"http://127.0.0.1:{healthy.port}"
        assert status_of(f"{base}/readyz", {"Host": "evil.example"}) == 400
        assert status_of(f"{base}/admin/", {"Host": "www.example.com"}) == 301
        # Load balancers probing over plain http get the answer, not a redirect.
        assert status_of(f"{base}/healthz", {"Host": "www.example.com"}) == 200
    finally:
        healthy.stop()
    # gunicorn gone: unhealthy.
    gone = healthy.check()
    assert gone.returncode != 0 and "Connection refused" in gone.stderr

    # The database unreachable: gunicorn answers, the healthcheck fails.
    closed = free_port()
    broken = Web(
        image,
        {**env, "DATABASE_URL": f"postgres://sourcebook:x@127.0.0.1:{closed}/sourcebook"},
        tmp_path / "broken.log",
    )
    try:
        assert wait_until(broken.answers), "gunicorn did not start"
        assert broken.process.poll() is None, (tmp_path / "broken.log").read_text()
        # The first request loads the app, which on a busy CI machine can outlast one
        # request's timeout: wait until a request is answered at all.
        assert wait_until(lambda: answered(f"http://127.0.0.1:{broken.port}/healthz"), 90), (
            tmp_path / "broken.log"
        ).read_text()
        result = broken.check()
        assert result.returncode != 0
        assert "HTTP 503" in result.stderr and '"database": {"ok": false' in result.stderr
    finally:
        broken.stop()


# --- TLS for compose's nginx -----------------------------------------------------------------


def nginx_site(tmp_path: Path, **env) -> subprocess.CompletedProcess:
    """deploy/nginx/sourcebook-site.sh, as compose's nginx runs it, writing to tmp_path."""
    return subprocess.run(
        ["sh", str(DEPLOY / "nginx" / "sourcebook-site.sh")],
        env={
            "PATH": os.environ["PATH"],
            "SOURCEBOOK_NGINX_CONF": str(DEPLOY / "nginx" / "sourcebook.conf"),
            "SOURCEBOOK_NGINX_OUT": str(tmp_path / "site.conf"),
            "SOURCEBOOK_NGINX_MAIN": str(tmp_path / "main.conf"),
            **env,
        },
        capture_output=True,
        text=True,
    )


def nginx_test(nginx: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """``nginx -t`` of the site configuration the script made, in a main configuration that
    loads njs as the script's own (main.conf) does, from Debian's module directory."""
    site = tmp_path / "site.conf"
    site.write_text(
        site.read_text().replace(
            "/etc/sourcebook/nginx/sourcebook.js", str(DEPLOY / "nginx" / "sourcebook.js")
        )
    )
    load = (tmp_path / "main.conf").read_text().splitlines()[0]
    assert load == "load_module modules/ngx_http_js_module.so;", load
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"""
load_module /usr/lib/nginx/modules/ngx_http_js_module.so;
user root;
worker_processes 1;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {tmp_path}/access.log;
    include {tmp_path}/site.conf;
}}
"""
    )
    return subprocess.run(
        [nginx, "-t", "-c", str(main), "-p", str(tmp_path)], capture_output=True, text=True
    )


def test_compose_nginx_serves_tls_with_the_shared_site_config(tmp_path):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        if REQUIRED:
            pytest.fail("nginx is not installed (apt-get install nginx)")
        pytest.skip("nginx is not installed (apt-get install nginx)")
    certs = tmp_path / "certs"
    certs.mkdir()
    root = "/srv/sourcebook/site/westlake-leaf/www/current"
    # The image's main configuration, which loads no module (the script adds njs, once).
    (tmp_path / "main.conf").write_text("user nginx;\nworker_processes auto;\n")
    no_root = nginx_site(tmp_path)
    assert no_root.returncode == 1 and "set SOURCEBOOK_NGINX_ROOT" in no_root.stderr
    missing = nginx_site(
        tmp_path, SOURCEBOOK_TLS="1", SOURCEBOOK_TLS_CERTS=str(certs), SOURCEBOOK_NGINX_ROOT=root
    )
    assert missing.returncode == 1 and "fullchain.pem is missing" in missing.stderr
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
         "-days", "1", "-keyout", str(certs / "privkey.pem"), "-out", str(certs / "fullchain.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    made = nginx_site(
        tmp_path,
        SOURCEBOOK_TLS="1",
        SOURCEBOOK_TLS_CERTS=str(certs),
        SOURCEBOOK_NGINX_ROOT=root,
        SOURCEBOOK_NGINX_UPSTREAM="127.0.0.1:8001",
    )
    assert made.returncode == 0, made.stderr
    site = (tmp_path / "site.conf").read_text()
    assert f"listen 443 ssl; ssl_certificate {certs}/fullchain.pem;" in site
    assert f"root {root};" in site and "server 127.0.0.1:8001;" in site
    assert "return 301 https://$host$request_uri;" in site
    checked = nginx_test(nginx, tmp_path)
    assert checked.returncode == 0, checked.stderr
    # Plain http (local trials): the shared config with compose's root, nginx accepts it too.
    made = nginx_site(tmp_path, SOURCEBOOK_TLS="0", SOURCEBOOK_NGINX_ROOT=root)
    assert made.returncode == 0, made.stderr
    assert "listen 80;" in (tmp_path / "site.conf").read_text()
    checked = nginx_test(nginx, tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert (tmp_path / "main.conf").read_text() == (
        "load_module modules/ngx_http_js_module.so;\nuser nginx;\nworker_processes auto;\n"
    )
    # A root that would inject nginx syntax is refused.
    bad = nginx_site(tmp_path, SOURCEBOOK_NGINX_ROOT="/srv/x; include /etc/passwd")
    assert bad.returncode == 1 and "only letters" in bad.stderr


# --- the directory target command ------------------------------------------------------------


@pytest.mark.django_db
def test_target_directory_creates_the_brands_target_once(settings, tmp_path):
    settings.SOURCEBOOK_SITE_ROOT = tmp_path / "site"
    brand = brand_create(
        slug="acme-tea", name="Acme Tea", base_url="https://tea.example", languages=["en"]
    )

    def run(*args) -> str:
        out = StringIO()
        call_command("target_directory", *args, stdout=out)
        return out.getvalue()

    first = run("acme-tea", "--folder", "www")
    live = tmp_path / "site" / "acme-tea" / "www" / "current"
    assert first.splitlines() == [
        f"Created directory target 'site www' of brand 'acme-tea': {live.parent}",
        f"Serve {live} (nginx root; in docker-compose: SOURCEBOOK_NGINX_ROOT)",
    ]
    again = run("acme-tea", "--folder", "www")
    assert again.startswith("Kept directory target 'site www'")
    target = Target.objects.get(brand=brand)
    assert (target.kind, target.config, target.operator_path, target.enabled) == (
        "directory", {"folder": "www"}, "", True,
    )  # fmt: skip
    # A target disabled in the admin is enabled again; the brand's own folder is another one.
    Target.objects.filter(pk=target.pk).update(enabled=False)
    assert run("acme-tea", "--folder", "www").startswith("Updated directory target")
    assert (
        run("acme-tea")
        .splitlines()[-1]
        .startswith(f"Serve {tmp_path / 'site' / 'acme-tea' / 'current'} ")
    )
    assert Target.objects.filter(brand=brand).count() == 2

    # Publishing deploys exactly where it said.
    call_command("publish", "acme-tea", stdout=StringIO(), stderr=StringIO())
    assert (live / "llms.txt").is_file()

    with pytest.raises(CommandError, match=r"^No brand 'nope' \(brands: acme-tea\)\.$"):
        run("nope")
    with pytest.raises(CommandError, match=r'config key "folder" is not a folder name: "\.\./x"'):
        run("acme-tea", "--folder", "../x")
    with pytest.raises(CommandError, match=r'is not a folder name: "/etc"'):
        run("acme-tea", "--folder", "/etc")
    assert Target.objects.filter(brand=brand).count() == 2


# --- readyz: public, so it tells only which check failed -----------------------------------


@pytest.mark.django_db
def test_readyz_says_which_check_failed_and_nothing_else(client, settings, brand):
    settings.CELERY_BROKER_URL = ""  # no broker: tasks run in-process, nothing to ask
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json()) == (
        200,
        {"status": "ready", "checks": {"database": {"ok": True}, "broker": {"ok": True}}},
    )
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    broken = client.get("/readyz")
    assert (broken.status_code, broken.json()) == (
        503,
        {"status": "not ready", "checks": {"database": {"ok": True}, "broker": {"ok": False}}},
    )
    assert brand.slug.encode() not in ready.content + broken.content
