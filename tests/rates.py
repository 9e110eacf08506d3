"""The rate dicts the visibility API and reports give (``visibility.metrics.Rate.as_dict``),
built from counts for tests to compare against."""

from visibility.metrics import wilson_interval


def rate(count: int, n: int) -> dict:
    low, high = wilson_interval(count, n)
    return {
        "count": count,
        "n": n,
        "rate": round(count / n, 4) if n else 0.0,
        "ci95": [round(low, 4), round(high, 4)],
    }
