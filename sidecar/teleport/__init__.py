"""Teleport side: identities, gRPC transports and the typed client."""
