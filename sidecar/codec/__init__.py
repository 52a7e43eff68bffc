"""Codecs between domain values and what is stored outside: the Go plugin's plugin-data keys."""
