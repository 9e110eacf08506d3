"""What a brand tells AI systems they may do with its content, and where.

Two vocabularies say it (see shared/reference/agents-and-feeds.md): Content Signals
(contentsignals.org: ``Content-Signal: search=yes, ai-input=yes, ai-train=no`` in robots.txt)
and the IETF aipref drafts (``Content-Usage: train-ai=n, search=y`` as a robots.txt rule, with
an optional path, and as an HTTP response header). The release's robots.txt carries both, and
the crawler groups' Allow/Disallow lines follow the same choices, so the preferences never
contradict the access rules. The servers (nginx's deploy/nginx/sourcebook.js and the
development server) read the header's value for a path back from the release's robots.txt:
header and file come from one published source.
"""

from __future__ import annotations

from dataclasses import dataclass

from kb.models import Brand
from publishing.site import SECTIONS

# The site's sections a brand may give preferences of their own: those of the entities' pages
# (publishing.site.SECTIONS), and the facts and FAQ pages.
SECTION_CHOICES: tuple[tuple[str, str], ...] = tuple(
    (section, f"{'FAQ' if section == 'faq' else section.capitalize()} (/{section}/)")
    for section in dict.fromkeys([*(section for _, section in SECTIONS), "facts", "faq"])
)


@dataclass(frozen=True)
class SectionUse:
    """A section's own preferences; None where it follows the site's."""

    section: str
    search: bool | None = None
    ai_train: bool | None = None


@dataclass(frozen=True)
class AiUsePolicy:
    ai_train: bool = False
    ai_input: bool = True
    sections: tuple[SectionUse, ...] = ()

    def signal(self) -> str:
        """The site's Content-Signal value. Search is always welcome: a page search agents
        may not index is not cited either (sections may say otherwise in Content-Usage)."""
        return f"search=yes, ai-input={yes_no(self.ai_input)}, ai-train={yes_no(self.ai_train)}"

    def usage(self, section: SectionUse | None = None) -> str:
        """A Content-Usage value (aipref vocabulary): the site's, or a section's."""
        search = True if section is None or section.search is None else section.search
        train = self.ai_train if section is None or section.ai_train is None else section.ai_train
        return f"train-ai={yn(train)}, search={yn(search)}"

    def section_paths(self, prefixes: list[str]) -> list[tuple[str, SectionUse]]:
        """Each section with a preference of its own, at its path in every language."""
        return [
            (f"/{prefix}{use.section}/", use)
            for use in self.sections
            if use.search is not None or use.ai_train is not None
            for prefix in prefixes
        ]

    def key(self) -> tuple:
        """What a release's robots.txt depends on, for its build key."""
        return (self.ai_train, self.ai_input, self.sections)


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def yn(value: bool) -> str:
    return "y" if value else "n"


def ai_use_policy(*, brand: Brand) -> AiUsePolicy:
    """The brand's policy as its site settings and section preferences state it."""
    from publishing.models import SectionAiUse, SiteSettings

    site_settings, _ = SiteSettings.objects.get_or_create(brand=brand)
    sections = tuple(
        SectionUse(
            section=row.section,
            search=choice_value(row.search),
            ai_train=choice_value(row.ai_train),
        )
        for row in SectionAiUse.objects.filter(site_settings=site_settings).order_by("section")
    )
    return AiUsePolicy(
        ai_train=site_settings.allow_ai_training,
        ai_input=site_settings.allow_ai_input,
        sections=sections,
    )


def choice_value(choice: str) -> bool | None:
    return {"yes": True, "no": False}.get(choice)


# --- reading it back from a published robots.txt -------------------------------------------


def content_usage_rules(robots: str) -> list[tuple[str, str]]:
    """The ``Content-Usage`` rules of robots.txt's ``User-agent: *`` group, as (path, value);
    the path is "" for a rule without one (it covers the whole site)."""
    rules: list[tuple[str, str]] = []
    agents: list[str] = []
    in_rules = False
    for raw in robots.splitlines():
        line = raw.split("#", 1)[0].strip()
        name, colon, value = line.partition(":")
        if not colon:
            continue
        name, value = name.strip().lower(), value.strip()
        if name == "user-agent":
            if in_rules:
                agents, in_rules = [], False
            agents.append(value)
            continue
        in_rules = True
        if name == "content-usage" and "*" in agents:
            path, space, rest = value.partition(" ")
            if path.startswith("/") and space:
                rules.append((path, rest.strip()))
            else:
                rules.append(("", value))
    return rules


def content_usage_for(rules: list[tuple[str, str]], path: str) -> str:
    """The value of the rule with the longest path that ``path`` starts with ("" if none)."""
    best, best_length = "", -1
    for rule_path, value in rules:
        length = len(rule_path)
        if path.startswith(rule_path) and length > best_length:
            best, best_length = value, length
    return best
