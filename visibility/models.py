"""AI visibility: engines, prompt sets, runs, answers with their analysis, alerts, crawler hits.

Answers are stored raw (content, citations, response body) next to their analysis, so the
analysis can be re-run when the brand's names or facts change.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from kb.models import Brand


class Engine(models.Model):
    """An OpenAI-compatible chat-completions endpoint to ask (OpenAI, Qwen, DeepSeek, …)."""

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="engines")
    name = models.CharField(max_length=100, help_text="Shown in reports, e.g. “ChatGPT”.")
    base_url = models.URLField(
        help_text="e.g. https://api.openai.com/v1, https://dashscope.aliyuncs.com/compatible-mode/v1"
    )
    model = models.CharField(max_length=200)
    api_key_encrypted = models.TextField(blank=True, editable=False)
    api_key_env = models.CharField(
        max_length=100,
        blank=True,
        help_text="Or: the name of the environment variable that holds the API key.",
    )
    parameters = models.JSONField(
        default=dict, blank=True, help_text='Extra request parameters, e.g. {"temperature": 0.7}.'
    )
    timeout_seconds = models.PositiveIntegerField(default=60)
    max_retries = models.PositiveIntegerField(
        default=2, help_text="Retries on timeouts, 429 (honouring Retry-After) and 5xx."
    )
    input_price_per_million = models.DecimalField(
        max_digits=10, decimal_places=4, default=0, help_text="USD per million input tokens."
    )
    output_price_per_million = models.DecimalField(
        max_digits=10, decimal_places=4, default=0, help_text="USD per million output tokens."
    )
    crawler = models.CharField(
        max_length=50,
        blank=True,
        help_text="The answer engine whose crawlers feed it (ChatGPT, Claude, Perplexity …): "
        "alerts report when they last fetched the site and whether robots.txt lets them in.",
    )

    class LocationParameter(models.TextChoices):
        NONE = "", "Not sent (the engine does not search the web by location)"
        OPENAI = "openai", "OpenAI search models: web_search_options.user_location (approximate)"
        PERPLEXITY = "perplexity", "Perplexity: web_search_options.user_location"

    location_parameter = models.CharField(
        "location",
        max_length=16,
        blank=True,
        choices=LocationParameter.choices,
        help_text="How the prompt set's country is passed, for engines that search the web "
        "from where the customer is.",
    )
    is_demo = models.BooleanField(
        default=False, help_text="A local demo engine with scripted answers, not a real one."
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["brand", "name"]
        constraints = [models.UniqueConstraint(fields=["brand", "name"], name="unique_engine_name")]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        # Brand admins type these: the URL must reach a public address (or one the operator
        # allowed), and the key may come only from a variable the operator listed.
        from config.credentials import credential_env_problem
        from config.egress import egress_url_problem

        super().clean()
        errors = {}
        if self.base_url:
            problem = egress_url_problem(self.base_url, unresolved_ok=True)
            if problem:
                errors["base_url"] = problem
        if self.api_key_env:
            problem = credential_env_problem(self.api_key_env)
            if problem:
                errors["api_key_env"] = f"api_key_env {problem}."
        if errors:
            raise ValidationError(errors)


class PromptSet(models.Model):
    """Questions customers ask, in one language, asked on a schedule."""

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="prompt_sets")
    name = models.CharField(max_length=100)
    language = models.CharField(max_length=35)
    competitors = models.JSONField(
        default=list,
        blank=True,
        help_text='Brands to track: [{"name": "Teavana", "aliases": ["…"], "domains": ["…"]}].',
    )
    repetitions = models.PositiveIntegerField(
        default=3, help_text="How often each question is asked per engine and run."
    )
    schedule = models.CharField(
        max_length=100,
        default="0 6 * * *",
        help_text="When to run, as a crontab line (minute hour day month weekday), UTC.",
    )
    enabled = models.BooleanField(default=True)
    location = models.CharField(
        max_length=2,
        blank=True,
        help_text="The customers' country (ISO 3166 code, e.g. US, DE, CN): engines that search "
        "the web by location are asked as from there. Empty: no location.",
    )
    pair_group = models.CharField(
        "paired with",
        max_length=100,
        blank=True,
        help_text="Prompt sets of one group ask the same questions in other languages, in the "
        "same order: the dashboard compares them side by side, question by question.",
    )
    sentiment_judge = models.ForeignKey(
        "Engine",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="An engine that rates how each answer speaks of every brand it names "
        "(positive, neutral, negative), quoting the sentence. Empty: no sentiment.",
    )

    class Meta:
        ordering = ["brand", "name"]
        constraints = [
            models.UniqueConstraint(fields=["brand", "name"], name="unique_prompt_set_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} [{self.language}]"


class Prompt(models.Model):
    prompt_set = models.ForeignKey(PromptSet, on_delete=models.CASCADE, related_name="prompts")
    text = models.TextField()
    order = models.PositiveIntegerField(default=0)
    # A question taken out of the set is kept inactive, so its answers stay in the history.
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["prompt_set", "order", "pk"]

    def __str__(self) -> str:
        return self.text[:80]


class Run(models.Model):
    """One pass of a prompt set over its engines."""

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        PARTIAL = "partial", "Done, some answers failed"
        FAILED = "failed", "Failed"

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="visibility_runs")
    prompt_set = models.ForeignKey(PromptSet, on_delete=models.CASCADE, related_name="runs")
    engines = models.ManyToManyField(Engine, related_name="runs")
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING)
    trigger = models.CharField(max_length=16, default="manual")  # schedule, manual, cli, api, demo
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    expected = models.PositiveIntegerField(default=0)
    # Asked as from where and in which language (the prompt set's, when the run started).
    location = models.CharField(max_length=2, blank=True)
    language = models.CharField(max_length=35, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["brand", "started_at"])]

    def __str__(self) -> str:
        return f"Run {self.pk} of {self.prompt_set} ({self.get_state_display()})"


class Answer(models.Model):
    """One answer of one engine to one prompt (one repetition), raw and analysed."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="answers")
    engine = models.ForeignKey(Engine, on_delete=models.CASCADE, related_name="answers")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="answers")
    repetition = models.PositiveIntegerField()
    language = models.CharField(max_length=35)
    asked_at = models.DateTimeField()
    # What came back.
    ok = models.BooleanField(default=True)
    error = models.TextField(blank=True)
    content = models.TextField(blank=True)
    citations = models.JSONField(default=list, blank=True)
    response = models.JSONField(default=dict, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    # What it says about the brand.
    mentioned = models.BooleanField(default=False)
    cited = models.BooleanField(default=False)
    first_mention = models.BooleanField(default=False)
    position = models.PositiveIntegerField(null=True, blank=True)
    competitors = models.JSONField(default=list, blank=True)
    misstatements = models.JSONField(default=list, blank=True)
    analysis = models.JSONField(default=dict, blank=True)
    # The judge's reading (visibility.sentiment): {"judge", "model", "judged_at", "brands":
    # {key: {"sentiment", "evidence", "quoted"}}} or {"judge", "error"}.
    sentiment = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["run", "engine", "prompt", "repetition"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "engine", "prompt", "repetition"], name="unique_answer_per_slot"
            )
        ]
        indexes = [models.Index(fields=["engine", "prompt", "asked_at"])]

    def __str__(self) -> str:
        return f"{self.engine} on “{self.prompt}” #{self.repetition + 1}"


class AlertSettings(models.Model):
    brand = models.OneToOneField(Brand, on_delete=models.CASCADE, related_name="alert_settings")
    emails = models.TextField(blank=True, help_text="Where to send alerts, one address per line.")
    webhook = models.ForeignKey(
        "publishing.Target",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        limit_choices_to={"kind": "webhook"},
        help_text="A webhook target that also receives visibility.alerts events (one digest per run).",
    )

    class Meta:
        verbose_name_plural = "alert settings"

    def __str__(self) -> str:
        return f"Alert settings of {self.brand}"

    @property
    def email_list(self) -> list[str]:
        return [line.strip() for line in self.emails.splitlines() if line.strip()]


class Alert(models.Model):
    """One change worth knowing about, recorded once (not once per run), or what an engine
    gets wrong in its first answers to a question (``first_seen``)."""

    class Kind(models.TextChoices):
        LOST_MENTION = "lost_mention", "Stopped mentioning the brand"
        NOT_MENTIONED = "not_mentioned", "Does not mention the brand"
        MISSTATEMENT = "misstatement", "New misstatement"

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="visibility_alerts")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    engine = models.ForeignKey(Engine, on_delete=models.CASCADE, related_name="alerts")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="alerts")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="alerts")
    fact_key = models.CharField(max_length=200, blank=True)
    first_seen = models.BooleanField(
        default=False, help_text="In the engine's first answers to the question, not a change."
    )
    summary = models.TextField()
    # What was seen: for a misstatement the value stated, the fact's, the sentence and the
    # fact's source; for mentions the counts of answers now and before.
    details = models.JSONField(default=dict, blank=True)
    reasons = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "engine", "prompt", "kind", "fact_key"], name="unique_alert_change"
            )
        ]

    def __str__(self) -> str:
        return self.summary


class CrawlerHit(models.Model):
    """A request by an AI agent, imported from the site's access logs."""

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="crawler_hits")
    time = models.DateTimeField()
    agent = models.CharField(max_length=64)
    purpose = models.CharField(max_length=16)  # search, user, training
    engine = models.CharField(max_length=50, blank=True)
    path = models.TextField()
    artifact = models.CharField(max_length=32)
    status = models.PositiveIntegerField()
    bytes = models.PositiveBigIntegerField(default=0)
    fingerprint = models.CharField(max_length=64)

    class Meta:
        ordering = ["-time"]
        constraints = [
            models.UniqueConstraint(fields=["brand", "fingerprint"], name="unique_crawler_hit")
        ]
        indexes = [models.Index(fields=["brand", "agent", "time"])]

    def __str__(self) -> str:
        return f"{self.agent} {self.path} ({self.status})"


class SiteAudit(models.Model):
    """A GEO audit of a website: what answer engines see of it, scored, with the fixes.

    The crawl's pages are ``SiteAuditPage`` rows; the site-wide findings, the score and its
    parts, the ranked fixes, what an import did and what changed since the last audit of the
    same site are in ``report`` (``visibility.site_audit.report.site_report``'s shape).
    """

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="site_audits")
    url = models.URLField(max_length=2000, help_text="Where the crawl starts, e.g. the home page.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    max_pages = models.PositiveIntegerField(default=50)
    import_entities = models.BooleanField(
        default=False,
        help_text="Import the products, organization, stores, people and FAQs found as drafts.",
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    score = models.PositiveSmallIntegerField(null=True, blank=True)
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["brand", "created_at"])]

    def __str__(self) -> str:
        return f"Audit {self.pk} of {self.url} ({self.get_state_display()})"

    @property
    def origin(self) -> str:
        from visibility.site_audit.crawler import origin_of

        return origin_of(self.url)


class SiteAuditPage(models.Model):
    """One address the audit fetched (or left alone, and why), with what it found there."""

    audit = models.ForeignKey(SiteAudit, on_delete=models.CASCADE, related_name="pages")
    url = models.URLField(max_length=2000)
    final_url = models.URLField(max_length=2000, blank=True)
    depth = models.PositiveSmallIntegerField(default=0)
    in_sitemap = models.BooleanField(default=False)
    sitemap_lastmod = models.CharField(max_length=40, blank=True)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=200, blank=True)
    bytes = models.PositiveBigIntegerField(default=0)
    # Why the page was not (fully) read: disallowed by robots.txt, a redirect loop, too large…
    skipped = models.CharField(max_length=300, blank=True)
    title = models.CharField(max_length=500, blank=True)
    language = models.CharField(max_length=35, blank=True)
    headings = models.JSONField(default=list, blank=True)
    words = models.PositiveIntegerField(default=0)
    needs_javascript = models.BooleanField(default=False)
    markdown_url = models.URLField(max_length=2000, blank=True)
    content_hash = models.CharField(max_length=64, blank=True)
    last_modified = models.CharField(max_length=64, blank=True)
    # The structured data: per syntax the number of graphs, and each entity found
    # (identity, types, name, syntax, graph) — ``visibility.site_audit.pages``.
    structured = models.JSONField(default=dict, blank=True)
    findings = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["audit", "url"], name="unique_site_audit_page")
        ]

    def __str__(self) -> str:
        return self.url
