"""Fake Teleport Auth service: mTLS gRPC, proxy TLS routing, admin fault injection."""
