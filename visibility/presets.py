"""Engine presets: the OpenAI-compatible endpoints of the answer engines brands ask most.

Base URLs and key variable names are those each provider documents for the official
``openai`` client (checked against their docs in December 2026, links below). Model ids
change often: the ones given are a starting point — the admin and ``visibility_config`` let
you give any other, and the first run shows at once if an id is unknown (an HTTP 404 on
each answer).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EnginePreset:
    key: str
    label: str
    base_url: str
    model: str
    api_key_env: str
    # The answer engine whose crawlers feed it, as visibility.access_logs names it ("" when
    # no crawler of it is known).
    crawler: str = ""
    docs: str = ""
    note: str = ""
    location_parameter: str = ""  # Engine.LocationParameter: how a country is passed

    def engine_fields(self) -> dict:
        return {"base_url": self.base_url, "model": self.model,
                "api_key_env": self.api_key_env, "crawler": self.crawler,
                "location_parameter": self.location_parameter}  # fmt: skip


PRESETS: tuple[EnginePreset, ...] = (
    EnginePreset("openai", "OpenAI", "https://api.openai.com/v1", "gpt-5.4-mini",
                 "OPENAI_API_KEY", "ChatGPT", "https://developers.openai.com/docs/models"),
    EnginePreset("perplexity", "Perplexity (Sonar)", "https://api.perplexity.ai", "sonar",
                 "PERPLEXITY_API_KEY", "Perplexity",
                 "https://docs.perplexity.ai/docs/sonar/openai-compatibility",
                 "Returns its citations with each answer. Perplexity announced Sonar chat "
                 "completions are supported until 2026-09-27: check the endpoint still answers.",
                 location_parameter="perplexity"),
    EnginePreset("anthropic", "Anthropic Claude (OpenAI SDK compatibility)",
                 "https://api.anthropic.com/v1/", "claude-haiku-4-5", "ANTHROPIC_API_KEY",
                 "Claude",
                 "https://platform.claude.com/docs/en/cli-sdks-libraries/libraries/openai-sdk",
                 "Anthropic calls this layer a convenience, not for production."),
    EnginePreset("gemini", "Google Gemini (OpenAI compatibility)",
                 "https://generativelanguage.googleapis.com/v1beta/openai/",
                 "gemini-3-flash-preview", "GEMINI_API_KEY", "Gemini",
                 "https://ai.google.dev/gemini-api/docs/openai"),
    EnginePreset("qwen", "Qwen (DashScope compatible mode, Beijing)",
                 "https://dashscope.aliyuncs.com/compatible-mode/v1", "qwen-plus",
                 "DASHSCOPE_API_KEY", "",
                 "https://www.alibabacloud.com/help/en/model-studio/base-url",
                 "Keys belong to one region."),
    EnginePreset("qwen-intl", "Qwen (DashScope compatible mode, Singapore)",
                 "https://dashscope-intl.aliyuncs.com/compatible-mode/v1", "qwen-plus",
                 "DASHSCOPE_API_KEY", "",
                 "https://www.alibabacloud.com/help/en/model-studio/base-url",
                 "Keys belong to one region."),
    EnginePreset("deepseek", "DeepSeek", "https://api.deepseek.com", "deepseek-v4-pro",
                 "DEEPSEEK_API_KEY", "", "https://api-docs.deepseek.com/"),
    EnginePreset("kimi", "Moonshot Kimi (China)", "https://api.moonshot.cn/v1", "kimi-k2.6",
                 "MOONSHOT_API_KEY", "", "https://platform.kimi.com/docs/api/overview"),
    EnginePreset("kimi-intl", "Moonshot Kimi (international)", "https://api.moonshot.ai/v1",
                 "kimi-k2.6", "MOONSHOT_API_KEY", "",
                 "https://platform.kimi.ai/docs/api/quickstart"),
    EnginePreset("glm", "Zhipu GLM (BigModel, China)", "https://open.bigmodel.cn/api/paas/v4",
                 "glm-4-flash", "ZAI_API_KEY", "",
                 "https://docs.bigmodel.cn/cn/api/introduction",
                 "temperature must be between 0 and 1, exclusive."),
    EnginePreset("glm-intl", "Z.ai GLM (international)", "https://api.z.ai/api/paas/v4",
                 "glm-4-flash", "ZAI_API_KEY", "",
                 "https://docs.z.ai/api-reference/introduction"),
    EnginePreset("doubao", "Doubao (Volcengine Ark)", "https://ark.cn-beijing.volces.com/api/v3",
                 "doubao-seed-1-6-250615", "ARK_API_KEY", "Doubao",
                 "https://www.volcengine.com/docs/82379/1298459",
                 "The model must be activated in the Ark console; an endpoint id (ep-…) "
                 "works as the model too."),
)  # fmt: skip
PRESETS_BY_KEY = {preset.key: preset for preset in PRESETS}
