"""llms-full.txt opens with the brand's H1 and summary once: the home page's twin, first in
the full text, does not repeat them (issue 21)."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("path", "title", "summary_start"),
    [
        ("llms-full.txt", "# Westlake Leaf Tea", "> A family tea company from Hangzhou"),
        ("zh-Hans/llms-full.txt", "# 西湖叶茶业", "> 1998年创立于杭州的家族茶企"),
    ],
)
def test_the_full_text_says_its_title_and_summary_once(path, title, summary_start, tmp_path):
    call_command("loaddemo", "--visibility-days", "0", stdout=StringIO())
    call_command("publish", "westlake-leaf", "--out", str(tmp_path), stdout=StringIO())
    text = (Path(tmp_path) / "current" / path).read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == title and lines[2].startswith(summary_start)
    assert lines.count(title) == 1
    summary = lines[2].removeprefix("> ")
    assert sum(summary in line for line in lines) == 1
    # The home page's own content follows the head directly.
    assert lines[4].startswith("## ")
