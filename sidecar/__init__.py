"""teleport-mattermost: Teleport Access Request reviews through Mattermost."""

__version__ = "0.1.0"
