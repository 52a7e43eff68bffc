"""Fake Mattermost server: REST API v4, rate limiting, fault injection."""
