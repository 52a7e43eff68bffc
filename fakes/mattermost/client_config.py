"""`GET /api/v4/config/client?format=old`: the client configuration, a flat map of strings.

Without a session the server answers its limited map, with one the full map (`GenerateLimitedClientConfig`,
`GenerateClientConfig` plus the computed keys). Both carry `AsymmetricSigningPublicKey`, the key integrations
verify trigger ids with. The fake fills the keys a client or an integration is likely to read, with the
real server's names and default values (or the fake's own settings where it has them); it does not list
the real server's hundreds of other keys. Servers before 10.11 (the fake reports 10.6) insist on
`format=old`: none is 501, any other value 400.
"""

from __future__ import annotations

from fakes.mattermost import errors
from fakes.mattermost.config import BUILD_NUMBER, SERVER_VERSION
from fakes.mattermost.state import State


def _flag(value: bool) -> str:
    return "true" if value else "false"


def check_format(value: str | None) -> None:
    """The `format` query parameter must be `old`."""
    if not value:
        raise errors.client_config_format_missing()
    if value != "old":
        raise errors.invalid_param("format")


def client_config(state: State, *, logged_in: bool) -> dict[str, str]:
    """The map the server sends; keys sorted, as Go writes a map."""
    config = state.config
    props = {
        "Version": SERVER_VERSION,
        "BuildNumber": BUILD_NUMBER,
        "BuildDate": "",
        "BuildHash": "",
        "BuildHashEnterprise": "none",
        "BuildEnterpriseReady": "false",
        "SiteURL": state.site_url.rstrip("/"),
        "SiteName": "Mattermost",
        "EnableBotAccountCreation": _flag(config.enable_bot_account_creation),
        "EnableOpenServer": _flag(config.enable_open_server),
        "EnableUserCreation": "true",
        "EnableSignInWithEmail": "true",
        "EnableSignInWithUsername": "true",
        "EnableSignUpWithEmail": "true",
        "DiagnosticsEnabled": "false",
        "AsymmetricSigningPublicKey": state.signer.public_key_b64(),
        "NoAccounts": "false",
    }
    if logged_in:
        props.update(
            {
                "EnableUserAccessTokens": _flag(config.enable_user_access_tokens),
                "EnableUserDeactivation": "false",
                "PostEditTimeLimit": str(config.post_edit_time_limit),
                "ShowEmailAddress": _flag(config.show_email_address),
                "ShowFullName": _flag(config.show_full_name),
                "RequireEmailVerification": _flag(config.require_email_verification),
                "EnablePostUsernameOverride": "false",
                "EnablePostIconOverride": "false",
                "EnableIncomingWebhooks": "true",
                "EnableOutgoingWebhooks": "true",
                "EnableCommands": "true",
                "MaxPostSize": str(config.max_post_length),
                "MaxFileSize": "104857600",
            }
        )
    return dict(sorted(props.items()))
