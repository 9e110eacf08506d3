"""Admin forms of publishing: a target's config is checked as it is before every deploy."""

from __future__ import annotations

from django import forms

from publishing.models import Target
from publishing.targets.config import target_config_clean
from publishing.targets.errors import TargetConfigError


class TargetForm(forms.ModelForm):
    """A target as brand users may set it.

    ``config`` goes through :func:`~publishing.targets.config.target_config_clean` (the
    same check as at deploy time): a directory target names a folder under the brand's
    site folder, an S3 endpoint and a webhook URL must be public addresses, S3 keys may
    name only the variables the operator allowed. The webhook secret is write-only.
    """

    secret = forms.CharField(
        label="Webhook signing secret",
        required=False,
        max_length=200,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="HMAC-SHA256 key (whsec_…). Never shown again; leave empty to keep the "
        "stored secret.",
    )

    class Meta:
        model = Target
        fields = ["brand", "name", "kind", "enabled", "config", "secret"]
        help_texts = {
            "config": 'As JSON, by kind. Directory: {"folder": "blog"}, a folder of the '
            "brand's own on the site server ({} for the brand's folder itself). S3: "
            '{"bucket": "…", "endpoint_url": "https://…", "region_name": "…", "location": '
            '"prefix", "access_key_env": "…", "secret_key_env": "…"}, the key variables '
            'among those the operator allowed. Webhook: {"url": "https://…", "events": '
            '["release.deployed"]}. Addresses must be public.'
        }

    def clean_secret(self):
        secret = self.cleaned_data.get("secret") or ""
        if not secret and self.instance.pk:
            return self.instance.secret  # empty keeps the stored secret
        return secret

    def clean(self):
        cleaned = super().clean()
        brand, kind = cleaned.get("brand"), cleaned.get("kind")
        if self.instance.pk and self.instance.operator_path:
            # The operator chose this directory for this brand (publish --out).
            if brand is not None and brand.pk != self.instance.brand_id:
                self.add_error("brand", "This target deploys to an operator's directory: it "
                               "cannot move to another brand.")  # fmt: skip
            if kind is not None and kind != self.instance.kind:
                self.add_error("kind", "This target deploys to an operator's directory: its "
                               "kind cannot change.")  # fmt: skip
        if brand is None or not kind or "config" not in cleaned:
            return cleaned
        try:
            cleaned["config"] = target_config_clean(
                brand=brand, kind=kind, config=cleaned["config"], name=cleaned.get("name", "")
            )
        except TargetConfigError as error:
            self.add_error("config", str(error))
        return cleaned
