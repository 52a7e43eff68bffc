"""Faithful fakes of Teleport Auth (gRPC) and Mattermost (REST v4) for tests and demos."""
