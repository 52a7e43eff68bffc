"""`python -m sidecar` is the same as the `teleport-mattermost` command."""

from sidecar.cli import entry

entry()
