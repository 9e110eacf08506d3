"""The curl examples of README.md's REST API section, run as written against a live server:
each must answer the status it implies (the 3-digit number in its comment, else 200)."""

import io
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.management import call_command

from kb.demo_brand import demo_load
from kb.models import Entity

pytestmark = [
    pytest.mark.usefixtures("live_server_sessions_ended"),
    pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl"),
]

README = Path(__file__).resolve().parent.parent / "README.md"
DEMO_SERVER = "http://127.0.0.1:8000"


def readme_commands() -> list[str]:
    """The commands of the first ```sh block of the REST API section, continuation lines
    joined, comment lines left out."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## REST API") :]
    section = section[: section.index("\n## ", 1)]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            commands.append(line.strip())
    return commands


def expected_status(command: str) -> int:
    comment = re.search(r"""\s#\s[^'"]*$""", command)
    found = re.search(r"\b([1-5]\d\d)\b", comment.group(0)) if comment else None
    return int(found.group(1)) if found else 200


def test_readme_has_the_examples():
    commands = readme_commands()
    assert commands[0].startswith("TOKEN=$(") and commands[1].startswith("API=")
    methods = {m for c in commands for m in re.findall(r"-X (\w+)", c)}
    assert {"PATCH", "POST"} <= methods
    assert "PUT" not in methods  # the README shows PATCH for a change of one field


def test_the_readme_curl_examples_work(transactional_db, live_server, tmp_path):
    cache.clear()
    brand = demo_load()["brand"]
    product = Entity.objects.get(brand=brand, slug="biluochun")
    offers_before = product.data["offers"]
    names_before = {v["@language"]: v["@value"] for v in product.data["name"]}

    env = {"PATH": "/usr/bin:/bin:/usr/local/bin"}
    values: dict[str, str] = {}  # <id>, <etag>: from earlier answers
    answers = []
    for number, command in enumerate(readme_commands()):
        if command.startswith("TOKEN=$("):
            words = shlex.split(command.removeprefix("TOKEN=$(").removesuffix(")"))
            assert words[:2] == [".venv/bin/python", "manage.py"], command
            out = io.StringIO()
            call_command(*words[2:], stdout=out, stderr=io.StringIO())
            env["TOKEN"] = out.getvalue().strip()
            continue
        if command.startswith("API="):
            env["API"] = command.removeprefix("API=").replace(DEMO_SERVER, live_server.url)
            assert env["API"].startswith(live_server.url), command
            continue
        assert command.startswith("curl "), command
        for placeholder in re.findall(r"<(id|etag)>", command):
            assert placeholder in values, f"{command}: no <{placeholder}> answered yet"
            command = command.replace(f"<{placeholder}>", values[placeholder])
        headers, body = tmp_path / f"{number}.headers", tmp_path / f"{number}.body"
        # Headers and body to files (-i would put the headers into the body), status printed.
        run = command.replace("curl -i ", "curl ", 1).replace(
            "curl ", f"curl -sS -D {headers} -o {body} -w '%{{http_code}}' ", 1
        )
        done = subprocess.run(
            ["bash", "-c", run], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, (command, done.stderr)
        status = int(done.stdout.strip())
        content = body.read_bytes() if body.exists() else b""  # none for a 304
        assert status == expected_status(command), (command, status, content[:2000])
        answers.append((command, status, content))
        received = {}
        for line in headers.read_text(encoding="latin-1").splitlines()[1:]:
            name, _, value = line.partition(":")
            received[name.strip().lower()] = value.strip()
        # <etag>: the ETag of the latest answer about the entity (<id>), not of the export.
        if values.get("id") and values["id"] in command and "etag" in received:
            values["etag"] = received["etag"]
        if content and status == 200 and received.get("content-type", "").endswith("json"):
            data = json.loads(content)
            if isinstance(data, dict) and len(data.get("results") or []) == 1:
                values.setdefault("id", data["results"][0]["id"])
        if status == 304:
            assert content == b""

    # The id found is the product's; the PATCH changed the Chinese name only and kept the
    # offers; the entity publish made it live.
    assert values["id"] == str(product.uuid)
    product.refresh_from_db()
    names = {v["@language"]: v["@value"] for v in product.data["name"]}
    assert names == {**names_before, "zh-Hans": "洞庭碧螺春（特级）"}
    assert product.data["offers"] == offers_before
    assert product.live_revision.content["data"]["name"] == product.data["name"]
    methods = [re.search(r"-X (\w+)", c).group(1) for c, _, _ in answers if "-X " in c]
    assert methods == ["PATCH", "POST", "POST"]
