"""Turning live content into the artifacts of a release."""
