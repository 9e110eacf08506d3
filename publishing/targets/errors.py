"""Errors shared by the deployment targets."""

from __future__ import annotations


class TargetConfigError(Exception):
    """A target's configuration is missing a key or has a bad value.

    The message names the target and the key, so it can be shown as is in the admin and in a
    failed deployment's error.
    """
