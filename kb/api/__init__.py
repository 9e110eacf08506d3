"""The REST API (/api/v1/): delivery for headless sites and management for back offices."""
