"""Shapes of the AI-visibility API: runs, answers, metrics, alerts, crawler visits, and the
query parameters each list understands (validated here, documented from here)."""

from __future__ import annotations

from rest_framework import serializers

from kb.api.serializers import page_of
from visibility.metrics import GROUPS
from visibility.models import Alert, Answer, Run

MAX_ID = 2**63 - 1

# --- query parameters ------------------------------------------------------------------------


class PeriodQuerySerializer(serializers.Serializer):
    since = serializers.DateField(
        required=False, help_text="First day (ISO date, UTC) of answers to count."
    )
    until = serializers.DateField(
        required=False, help_text="Last day (ISO date, UTC) of answers to count, included."
    )

    def validate(self, attrs):
        since, until = attrs.get("since"), attrs.get("until")
        if since and until and until < since:
            raise serializers.ValidationError({"until": [f"Give a day on or after {since}."]})
        return attrs


class MetricsQuerySerializer(PeriodQuerySerializer):
    group = serializers.ChoiceField(
        choices=list(GROUPS), default="engine", help_text="What each group of `groups` is."
    )


class SeriesQuerySerializer(PeriodQuerySerializer):
    period = serializers.ChoiceField(
        choices=["day", "week"], default="day", help_text="Days, or ISO weeks (from Monday)."
    )
    engine = serializers.CharField(
        required=False, min_length=1, max_length=100, help_text="Only this engine (its name)."
    )


class AnswerQuerySerializer(serializers.Serializer):
    engine = serializers.CharField(
        required=False, min_length=1, max_length=100, help_text="Only this engine (its name)."
    )
    mentioned = serializers.BooleanField(
        required=False, help_text="Only answers that name the brand (true) or do not (false)."
    )
    ok = serializers.BooleanField(
        required=False, help_text="Only answers that came back (true) or failed (false)."
    )


# --- runs and answers ------------------------------------------------------------------------


class PromptSetRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    language = serializers.CharField()


class RunSerializer(serializers.ModelSerializer):
    """A run; the queryset annotates ``answered`` and ``failed`` (see ``runs_with_counts``)."""

    prompt_set = PromptSetRefSerializer()
    answered = serializers.IntegerField(help_text="Answers that came back.")
    failed = serializers.IntegerField(help_text="Questions whose asking failed (errors, timeouts).")
    expected = serializers.IntegerField(help_text="Questions × engines × repetitions.")
    engines = serializers.SlugRelatedField(
        many=True, read_only=True, slug_field="name", help_text="The engines asked, by name."
    )

    class Meta:
        model = Run
        fields = ["id", "prompt_set", "state", "trigger", "expected", "answered", "failed",
                  "started_at", "finished_at", "engines"]  # fmt: skip


class RunStartSerializer(serializers.Serializer):
    prompt_set = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, help_text="The id of one of the brand's prompt sets."
    )
    engines = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        allow_empty=False,
        max_length=100,
        help_text="Engines to ask, by name (default: every enabled engine of the brand).",
    )


class MisstatementSerializer(serializers.Serializer):
    fact_key = serializers.CharField()
    stated = serializers.CharField(help_text="The value the answer gives.")
    expected = serializers.CharField(help_text="The value of the brand's fact.")
    excerpt = serializers.CharField(help_text="The answer's sentence, as written.")
    source_url = serializers.CharField(
        default="", help_text="The fact's source, to show whoever corrects the engine."
    )


class AnswerSerializer(serializers.ModelSerializer):
    engine = serializers.CharField(source="engine.name")
    prompt = serializers.CharField(source="prompt.text")
    citations = serializers.ListField(child=serializers.CharField(), help_text="Cited URLs.")
    cost = serializers.DecimalField(
        max_digits=12, decimal_places=6, coerce_to_string=True, help_text="USD."
    )
    position = serializers.IntegerField(
        allow_null=True, help_text="Rank of the brand's first mention among the tracked brands."
    )
    competitors = serializers.ListField(
        child=serializers.CharField(), help_text="Competitors named, in order of first mention."
    )
    misstatements = MisstatementSerializer(many=True)

    class Meta:
        model = Answer
        fields = ["id", "engine", "prompt", "repetition", "language", "asked_at", "ok", "error",
                  "content", "citations", "latency_ms", "prompt_tokens", "completion_tokens",
                  "cost", "mentioned", "cited", "position", "first_mention", "competitors",
                  "misstatements"]  # fmt: skip


RunPageSerializer = page_of(RunSerializer, "VisibilityRunPageSerializer")
AnswerPageSerializer = page_of(AnswerSerializer, "VisibilityAnswerPageSerializer")


# --- metrics ---------------------------------------------------------------------------------


class RateSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    n = serializers.IntegerField(help_text="Out of how many.")
    rate = serializers.FloatField()
    ci95 = serializers.ListField(
        child=serializers.FloatField(),
        min_length=2,
        max_length=2,
        help_text="The 95 % Wilson score interval [low, high].",
    )


class MetricsSerializer(serializers.Serializer):
    answers = serializers.IntegerField(help_text="Answers that came back (the rates' n).")
    failed = serializers.IntegerField(help_text="Failed answers, left out of every rate.")
    score = serializers.FloatField(help_text="0–100, see `formula`.")
    cost_usd = serializers.FloatField()
    mention = RateSerializer()
    citation = RateSerializer()
    first_mention = RateSerializer()
    misstatement = RateSerializer()
    share_of_voice = RateSerializer(help_text="Brand mentions among all tracked brands' mentions.")


class MetricsReportSerializer(serializers.Serializer):
    formula = serializers.CharField()
    legend = serializers.CharField()
    group = serializers.ChoiceField(choices=list(GROUPS))
    since = serializers.DateField(allow_null=True)
    until = serializers.DateField(allow_null=True)
    groups = serializers.DictField(
        child=MetricsSerializer(), help_text="Per engine, prompt or language (`group`)."
    )
    all = MetricsSerializer(help_text="Every answer of the period.")


class SeriesRowSerializer(serializers.Serializer):
    """One engine in one period (also a line of the CSV, in this column order)."""

    engine = serializers.CharField()
    period_start = serializers.DateField(help_text="The day, or the Monday of the week.")
    answers = serializers.IntegerField()
    failed = serializers.IntegerField()
    score = serializers.FloatField()
    mention_rate = serializers.FloatField()
    citation_rate = serializers.FloatField()
    first_mention_rate = serializers.FloatField()
    share_of_voice_rate = serializers.FloatField()
    misstatement_rate = serializers.FloatField()
    mention_ci95_low = serializers.FloatField()
    citation_ci95_low = serializers.FloatField()
    mention_ci95_high = serializers.FloatField()
    citation_ci95_high = serializers.FloatField()
    cost_usd = serializers.FloatField()


class SeriesSerializer(serializers.Serializer):
    period = serializers.ChoiceField(choices=["day", "week"])
    formula = serializers.CharField()
    legend = serializers.CharField()
    engine = serializers.CharField(allow_null=True)
    since = serializers.DateField(allow_null=True)
    until = serializers.DateField(allow_null=True)
    series = SeriesRowSerializer(many=True)
    releases = serializers.ListField(
        child=serializers.DictField(),
        help_text="The brand's releases that went live in the period, to mark on a chart: "
        "number and deployed_at.",
    )


# --- alerts and crawlers ---------------------------------------------------------------------


class ReasonSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="e.g. fact_misstated, robots_blocks, page_changed.")
    text = serializers.CharField(help_text="In plain words.")
    fact = serializers.CharField(required=False, help_text="The fact's key, for fact reasons.")


class AlertSerializer(serializers.ModelSerializer):
    engine = serializers.CharField(source="engine.name")
    prompt = serializers.CharField(source="prompt.text")
    fact = serializers.CharField(
        source="fact_key", allow_null=True, help_text="The fact misstated (misstatement alerts)."
    )
    reasons = ReasonSerializer(many=True)
    details = serializers.DictField(
        help_text="What was seen: for a misstatement stated, expected, excerpt and source_url; "
        "for mentions the number of answers and of those mentioning the brand (and before)."
    )
    run = serializers.IntegerField(source="run_id")

    class Meta:
        model = Alert
        fields = ["id", "kind", "engine", "prompt", "fact", "first_seen", "summary", "details",
                  "reasons", "run", "created_at"]  # fmt: skip

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["fact"] = data["fact"] or None
        return data


AlertPageSerializer = page_of(AlertSerializer, "VisibilityAlertPageSerializer")


class CrawlerSerializer(serializers.Serializer):
    agent = serializers.CharField(help_text="The user-agent token, e.g. GPTBot.")
    purpose = serializers.CharField(help_text="search, user or training.")
    engine = serializers.CharField(help_text="The answer engine it feeds, if known.")
    visits = serializers.IntegerField()
    first_visit = serializers.DateTimeField()
    last_visit = serializers.DateTimeField()
    pages = serializers.IntegerField(help_text="Distinct paths fetched.")
    artifacts = serializers.DictField(
        child=serializers.IntegerField(), help_text="Requests per kind of file fetched."
    )
    statuses = serializers.DictField(
        child=serializers.IntegerField(), help_text="Requests per HTTP status code."
    )


# --- citation sources ------------------------------------------------------------------------


class CitationQuerySerializer(PeriodQuerySerializer):
    engine = serializers.CharField(
        required=False, min_length=1, max_length=100, help_text="Only this engine (its name)."
    )
    top = serializers.IntegerField(
        required=False, default=20, min_value=1, max_value=200, help_text="Sites and pages listed."
    )


class CitedSiteSerializer(serializers.Serializer):
    site = serializers.CharField(help_text="Registrable domain, e.g. bbc.co.uk.")
    owner = serializers.ChoiceField(
        choices=["brand", "competitor", "third_party"], help_text="Whose site it is."
    )
    competitor = serializers.CharField(allow_null=True, help_text="The competitor it is of.")
    answers = serializers.IntegerField(help_text="Answers citing the site.")
    share_of_citing_answers = RateSerializer(help_text="Of the answers citing anything.")
    urls = serializers.IntegerField(help_text="URLs cited on it (distinct per answer).")
    instead_of_us = serializers.IntegerField(
        help_text="Answers citing it and none of the brand's pages."
    )
    engines = serializers.DictField(child=serializers.IntegerField(), help_text="Per engine.")
    prompts = serializers.DictField(
        child=serializers.IntegerField(), help_text="The five questions citing it most."
    )
    weeks = serializers.DictField(
        child=serializers.IntegerField(), help_text="Answers per ISO week (its Monday)."
    )


class CitedPageSerializer(serializers.Serializer):
    url = serializers.CharField(help_text="Host and path of one of the brand's pages.")
    answers = serializers.IntegerField()
    engines = serializers.DictField(child=serializers.IntegerField())


class EngineCitationSerializer(serializers.Serializer):
    engine = serializers.CharField()
    answers = serializers.IntegerField()
    answers_citing = serializers.IntegerField()
    brand_cited = RateSerializer()
    competitor_cited = RateSerializer()


class CitationReportSerializer(serializers.Serializer):
    since = serializers.DateField(allow_null=True)
    until = serializers.DateField(allow_null=True)
    engine = serializers.CharField(allow_null=True)
    answers = serializers.IntegerField(help_text="Answers that came back.")
    answers_citing = serializers.IntegerField(help_text="Of those, citing at least one URL.")
    brand_cited = RateSerializer(help_text="Answers citing one of the brand's pages.")
    sites = CitedSiteSerializer(many=True, help_text="Most cited first.")
    instead_of_us = CitedSiteSerializer(
        many=True, help_text="Sites cited by answers that cite none of the brand's pages."
    )
    our_pages = CitedPageSerializer(many=True)
    engines = EngineCitationSerializer(many=True)


# --- before and after a release --------------------------------------------------------------


class ComparisonQuerySerializer(serializers.Serializer):
    days = serializers.IntegerField(
        required=False, default=14, min_value=1, max_value=180,
        help_text="Length of each window, before and after the release went live.",
    )  # fmt: skip
    engine = serializers.CharField(
        required=False, min_length=1, max_length=100, help_text="Only this engine (its name)."
    )


class RateChangeSerializer(serializers.Serializer):
    metric = serializers.ChoiceField(choices=["mention", "citation", "first_mention",
                                              "misstatement"])  # fmt: skip
    before = RateSerializer()
    after = RateSerializer()
    difference = serializers.FloatField(allow_null=True, help_text="after − before.")
    difference_ci95 = serializers.ListField(
        child=serializers.FloatField(), allow_null=True,
        help_text="95 % interval of the difference (Newcombe's hybrid score method).",
    )  # fmt: skip
    ratio = serializers.FloatField(
        allow_null=True, help_text="after / before; null if before is 0."
    )
    z = serializers.FloatField(allow_null=True, help_text="Two-proportion z (pooled).")
    p_value = serializers.FloatField(allow_null=True, help_text="Two-sided.")
    significant = serializers.BooleanField(help_text="p < 0.05.")


class WindowSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(help_text="Excluded.")


class ReleaseComparisonSerializer(serializers.Serializer):
    release = serializers.IntegerField()
    deployed_at = serializers.DateTimeField(help_text="When the release went live.")
    days = serializers.IntegerField()
    engine = serializers.CharField(allow_null=True)
    before = WindowSerializer()
    after = WindowSerializer()
    caveat = serializers.CharField()
    all = RateChangeSerializer(many=True, help_text="Every engine together.")
    engines = serializers.DictField(child=RateChangeSerializer(many=True))


class ReleaseMarkSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    deployed_at = serializers.DateTimeField()


# --- competitors -----------------------------------------------------------------------------


class LeaderboardQuerySerializer(PeriodQuerySerializer):
    engine = serializers.CharField(
        required=False, min_length=1, max_length=100, help_text="Only this engine (its name)."
    )


class SentimentCountsSerializer(serializers.Serializer):
    positive = serializers.IntegerField()
    neutral = serializers.IntegerField()
    negative = serializers.IntegerField()
    rated = serializers.IntegerField(help_text="Answers naming it that the judge rated.")
    net = serializers.FloatField(allow_null=True, help_text="(positive − negative) / rated.")


class LeaderboardRowSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="The brand's slug, or the competitor's name.")
    name = serializers.CharField()
    is_brand = serializers.BooleanField()
    answers = serializers.IntegerField()
    mention = RateSerializer(help_text="Answers naming it.")
    mentions = serializers.IntegerField(help_text="Times named, in all answers.")
    share_of_voice = RateSerializer(help_text="Its mentions among every tracked brand's.")
    first_mention = RateSerializer(help_text="Answers naming it before any other tracked brand.")
    sentiment = SentimentCountsSerializer()


class LeaderboardSerializer(serializers.Serializer):
    since = serializers.DateField(allow_null=True)
    until = serializers.DateField(allow_null=True)
    engine = serializers.CharField(allow_null=True)
    answers = serializers.IntegerField()
    mentions = serializers.IntegerField()
    brands = LeaderboardRowSerializer(many=True, help_text="Most mentioned first.")


class ConfigChangeSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["engine", "prompt_set", "alerts"])
    name = serializers.CharField()
    action = serializers.ChoiceField(choices=["create", "update", "unchanged"])
    fields = serializers.DictField(help_text="Each field changed: {before, after}.")


# --- paired prompt sets ----------------------------------------------------------------------


class PairedCellSerializer(serializers.Serializer):
    prompt_set = serializers.CharField()
    language = serializers.CharField()
    prompt = serializers.CharField(allow_null=True, help_text="The question in this language.")
    answers = serializers.IntegerField()
    mention = RateSerializer()
    citation = RateSerializer()
    first_mention = RateSerializer()
    misstatement = RateSerializer()


class PairedQuestionSerializer(serializers.Serializer):
    position = serializers.IntegerField(help_text="The question's place in each set, from 1.")
    cells = PairedCellSerializer(many=True, help_text="One per prompt set of the group.")


class PairedComparisonSerializer(serializers.Serializer):
    group = serializers.CharField()
    since = serializers.DateField(allow_null=True)
    until = serializers.DateField(allow_null=True)
    prompt_sets = serializers.ListField(child=serializers.DictField())
    questions = PairedQuestionSerializer(many=True)
    all = PairedCellSerializer(many=True, help_text="Each set over all its questions.")
