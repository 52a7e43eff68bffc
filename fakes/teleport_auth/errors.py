"""Errors raised by the fake Auth's state and policy code, one class per Teleport `trace` error kind.

The gRPC layer maps them to status codes exactly as Teleport's `trail` package does (upstream `gravitational/trace`
`trail/trail.go`), so the
state and RBAC modules stay free of grpc and can be unit tested directly.
"""

from __future__ import annotations

import grpc


class AuthError(Exception):
    """Base class: a refusal the server reports to the caller with a gRPC status code."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(AuthError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(AuthError):
    code = grpc.StatusCode.ALREADY_EXISTS


class AccessDenied(AuthError):
    code = grpc.StatusCode.PERMISSION_DENIED


class CompareFailed(AuthError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class BadParameter(AuthError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class LimitExceeded(AuthError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class ConnectionProblem(AuthError):
    code = grpc.StatusCode.UNAVAILABLE


class Unimplemented(AuthError):
    """trace.NotImplemented."""

    code = grpc.StatusCode.UNIMPLEMENTED
