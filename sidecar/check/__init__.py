"""`teleport-mattermost check`: the command (`command.py`) and its Mattermost diagnostics (`mattermost.py`)."""
