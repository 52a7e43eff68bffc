"""`teleport-mattermost route`: how the plugin would route one request (rules, static fallback), and why."""
