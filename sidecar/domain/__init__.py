"""The domain core: values, the record kept in plugin data, the ports, and the error tree.

Everything else in the sidecar builds on this package, and it imports nothing else of ours
(an import-linter contract in pyproject.toml enforces it).
"""
