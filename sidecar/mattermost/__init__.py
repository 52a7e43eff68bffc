"""Mattermost side: the REST client and the bot that implements the chat port."""
