"""Settings used only by the API benchmark: the project's settings, plus the floor's URL.

``ROOT_URLCONF`` adds ``/bench/floor/`` (a bare view, ``floor_urls``) in front of the
project's URLs. The API's per-token rate limit is switched off (rate ``None``): a load
generator sends far more than the default 1200 requests a minute, and the benchmark measures
serving, not refusing, requests.
"""

from config.settings import *  # noqa: F403
from config.settings import REST_FRAMEWORK

ROOT_URLCONF = "tests.benchmarks.floor_urls"
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api": None}}
