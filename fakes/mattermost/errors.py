"""Mattermost `AppError` values: ids, English messages and status codes of the real server."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answer; rendered as the AppError JSON body by the server middleware."""

    def __init__(self, status: int, error_id: str, message: str, detailed: str = "") -> None:
        super().__init__(f"{status} {error_id}")
        self.status = status
        self.error_id = error_id
        self.message = message
        # Kept for the fake's own diagnostics; the response body carries "" like a production server.
        self.detailed = detailed

    def body(self, request_id: str | None) -> dict[str, Any]:
        """The AppError JSON object (detailed_error wiped as with EnableDeveloper off)."""
        out: dict[str, Any] = {"id": self.error_id, "message": self.message, "detailed_error": ""}
        if request_id is not None:
            out["request_id"] = request_id
        out["status_code"] = self.status
        return out


def session_expired() -> ApiError:
    """401 for a missing, unknown or revoked token."""
    return ApiError(401, "api.context.session_expired.app_error", "Invalid or expired session, please login again.")


def token_in_query() -> ApiError:
    """401 for `?access_token=` used with a non-OAuth session."""
    return ApiError(
        401,
        "api.context.token_provided.app_error",
        "Session is not OAuth but token was provided in the query string.",
    )


def forbidden(user_id: str, permission: str) -> ApiError:
    """403 `api.context.permissions.app_error`."""
    return ApiError(
        403,
        "api.context.permissions.app_error",
        "You do not have the appropriate permissions.",
        f"userId={user_id}, permission={permission}",
    )


def invalid_body_param(name: str) -> ApiError:
    """400 for a missing or malformed body field."""
    return ApiError(400, "api.context.invalid_body_param.app_error", f"Invalid or missing {name} in request body.")


def invalid_url_param(name: str) -> ApiError:
    """400 for a malformed URL parameter."""
    return ApiError(
        400, "api.context.invalid_url_param.app_error", f"Invalid or missing {name} parameter in request URL."
    )


def invalid_param(name: str) -> ApiError:
    """400 `api.context.invalid_param.app_error`."""
    return ApiError(400, "api.context.invalid_param.app_error", f"Invalid {name} parameter.")


def body_too_large() -> ApiError:
    """413 for a body over MaximumPayloadSizeBytes."""
    return ApiError(413, "api.context.request_body_too_large.app_error", "Request body is too large.")


def user_not_found() -> ApiError:
    """404 for an unknown user."""
    return ApiError(404, "app.user.missing_account.const", "Unable to find the user.")


def team_not_found() -> ApiError:
    """404 for an unknown team name."""
    return ApiError(404, "app.team.get_by_name.missing.app_error", "Unable to find the existing team.")


def channel_not_found() -> ApiError:
    """404 for an unknown (or invisible private) channel name."""
    return ApiError(404, "app.channel.get_by_name.missing.app_error", "Channel does not exist.")


def channel_id_not_found() -> ApiError:
    """404 for an unknown channel id."""
    return ApiError(404, "app.channel.get.existing.app_error", "Unable to find the existing channel.")


def channel_member_not_found() -> ApiError:
    """404 when the user is not a member of the channel."""
    return ApiError(
        404, "app.channel.get_member.missing.app_error", "No channel member found for that user ID and channel ID."
    )


def team_id_not_found() -> ApiError:
    """404 for an unknown team id."""
    return ApiError(404, "app.team.get.find.app_error", "Unable to find the existing team.")


def post_not_found() -> ApiError:
    """404 for an unknown post id."""
    return ApiError(404, "app.post.get.app_error", "Unable to get the post.")


def message_too_long() -> ApiError:
    """400 for a message over the configured maximum (in runes)."""
    return ApiError(
        400,
        "model.post.is_valid.message_length.app_error",
        "Post Message property is longer than the maximum permitted length.",
    )


def props_too_long() -> ApiError:
    """400 for props whose JSON exceeds PostPropsMaxRunes."""
    return ApiError(400, "model.post.is_valid.props.app_error", "Invalid props.")


def root_id_invalid() -> ApiError:
    """400 for a root id that is unknown or not a root post."""
    return ApiError(400, "api.post.create_post.root_id.app_error", "Invalid RootId parameter.")


def channel_root_id_invalid() -> ApiError:
    """400 for a root post that lives in another channel."""
    return ApiError(400, "api.post.create_post.channel_root_id.app_error", "Invalid ChannelId for RootId parameter.")


def dm_invalid_user() -> ApiError:
    """400 for a DM with a user that does not exist."""
    return ApiError(
        400,
        "api.channel.create_direct_channel.invalid_user.app_error",
        "Invalid user ID for direct channel creation.",
    )


def username_exists() -> ApiError:
    """400 for a duplicate username."""
    return ApiError(400, "app.user.save.username_exists.app_error", "An account with that username already exists.")


def email_exists() -> ApiError:
    """400 for a duplicate email."""
    return ApiError(400, "app.user.save.email_exists.app_error", "An account with that email already exists.")


def no_open_server() -> ApiError:
    """403 when sign-up is closed and the caller is not an administrator."""
    return ApiError(
        403,
        "api.user.create_user.no_open_server",
        "This server does not allow open signups.  Please speak with your Administrator to receive an invitation.",
    )


def bot_creation_disabled() -> ApiError:
    """403 when EnableBotAccountCreation is off."""
    return ApiError(403, "api.bot.create_disabled", "Bot creation has been disabled.")


def access_tokens_disabled() -> ApiError:
    """501 when a human asks for a personal access token while they are disabled."""
    return ApiError(
        501,
        "app.user_access_token.disabled",
        "Personal access tokens are disabled on this server. Please contact your system administrator for details.",
    )


def action_not_found() -> ApiError:
    """404 for an action id absent from the post's attachments."""
    return ApiError(404, "api.post.do_action.action_id.app_error", "Invalid action id.")


def action_integration_failed(detail: str) -> ApiError:
    """400 when the integration behind a button fails or answers non-200."""
    return ApiError(400, "api.post.do_action.action_integration.app_error", "Action integration error.", detail)


def add_to_dm() -> ApiError:
    """400 when adding a member to a direct channel."""
    return ApiError(
        400,
        "api.channel.add_user_to_channel.type.app_error",
        "Can not add user to this channel type.",
    )


def user_not_in_team() -> ApiError:
    """403 when adding a channel member who is not in the channel's team."""
    return ApiError(
        403,
        "api.channel.add_user.to.channel.failed.app_error",
        "Failed to add user to channel.",
    )


def edit_time_limit() -> ApiError:
    """400 for a message edit after PostEditTimeLimit."""
    return ApiError(
        400,
        "api.post.update_post.permissions_time_limit.app_error",
        "Post edit is only allowed for {{.timeLimit}} seconds. Please ask your System Administrator for details.",
    )


def user_invalid(field_name: str) -> ApiError:
    """400 from `User.IsValid` for one field."""
    return ApiError(400, f"model.user.is_valid.{field_name}.app_error", f"Invalid {field_name}.")


def handle_404_body(path: str) -> dict[str, Any]:
    """The body `Handle404` writes for unknown /api/v4 routes: no request_id, detailed_error filled."""
    return {
        "id": "api.context.404.app_error",
        "message": "Sorry, we could not find the page.",
        "detailed_error": f"There doesn't appear to be an api call for the url='{path}'.  "
        "Typo? are you missing a team_id or user_id as part of the url?",
        "status_code": 404,
    }


def client_config_format_missing() -> ApiError:
    """501 for `GET /config/client` without `format` (servers before 10.11 require `format=old`)."""
    return ApiError(
        501,
        "api.config.client.old_format.app_error",
        "New format for the client configuration is not supported yet. Please specify format=old in the query string.",
    )


def dialog_response_undecodable() -> ApiError:
    """500 when a dialog integration answers 200 with a body that is not a SubmitDialogResponse."""
    return ApiError(
        500,
        "app.submit_interactive_dialog.decode_json_error",
        "Encountered an error decoding JSON response from interactive dialog submission.",
    )


def dialog_response_invalid(detail: str) -> ApiError:
    """400 when a dialog integration's answer fails `SubmitDialogResponse.IsValid`."""
    return ApiError(
        400,
        "app.submit_interactive_dialog.invalid_response",
        "Encountered an invalid response from interactive dialog submission.",
        detail,
    )
