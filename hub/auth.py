"""Who may log in: NativeAuthenticator by default, GenericOAuthenticator by setting.

``ALERTLAB_AUTHENTICATOR=native``: accounts made on the hub's sign-up page
(username, e-mail, password), approved by an admin at /hub/authorize (or at once
with ALERTLAB_OPEN_SIGNUP), locked for a while after repeated failed logins.
The only change to NativeAuthenticator is in its pages: a sign-up with a bad
e-mail or a short password, and a locked account, are told so in plain words
instead of the library's catch-all messages.

``ALERTLAB_AUTHENTICATOR=generic-oauth``: an institutional OAuth2/OIDC provider
through OAuthenticator's GenericOAuthenticator, configured with its own
OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET, OAUTH2_AUTHORIZE_URL, OAUTH2_TOKEN_URL,
OAUTH2_USERDATA_URL, OAUTH2_USERNAME_KEY (and OAUTH_CALLBACK_URL) variables."""

from __future__ import annotations

import math
import re
from pathlib import Path

from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import LoginHandler, SignUpHandler

from alertlab.core import settings
from alertlab.core.errors import ConfigError

AUTHENTICATORS = ("native", "generic-oauth")
# A subset of what NativeAuthenticator's own e-mail check accepts, with a real top-level domain.
EMAIL = re.compile(r"[A-Za-z0-9.+_-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


def signup_problem(authenticator: NativeAuthenticator, username: str, email: str, password: str) -> str | None:
    """Why a sign-up cannot be accepted, in words meant for the person signing up (None if it can)."""
    if not username or any(ch in username for ch in ", /") or not authenticator.validate_username(username):
        return "A username may not be empty or contain spaces, commas or slashes."
    if authenticator.ask_email_on_signup and not EMAIL.fullmatch(email or ""):
        return f"'{email}' is not an e-mail address: enter one like name@example.org."
    if len(password) < authenticator.minimum_password_length:
        return f"Your password is too short: use at least {authenticator.minimum_password_length} characters."
    if authenticator.check_common_password and authenticator.is_password_common(password):
        return "This password is too common: choose one that is harder to guess."
    return None


class ClearSignUpHandler(SignUpHandler):
    """The sign-up page, saying exactly what is wrong with a rejected sign-up."""

    async def post(self):
        if self.authenticator.enable_signup:
            problem = signup_problem(
                self.authenticator,
                self.get_body_argument("username", "", strip=False),
                self.get_body_argument("email", "", strip=False),
                self.get_body_argument("signup_password", "", strip=False),
            )
            if problem:
                html = await self.render_template(
                    "signup.html", ask_email=self.authenticator.ask_email_on_signup, result_message=problem,
                    alert="alert-danger", two_factor_auth=self.authenticator.allow_2fa,
                    recaptcha_key=self.authenticator.recaptcha_key, tos=self.authenticator.tos)
                self.finish(html)
                return
        await super().post()


class ClearLoginHandler(LoginHandler):
    """The login page, saying when an account is locked after too many failed logins."""

    def _render(self, login_error=None, username=None):
        if login_error and username:
            auth = self.authenticator
            name = auth.normalize_username(username)
            if auth.allowed_failed_logins and auth.is_blocked(name):
                minutes = max(1, math.ceil(auth.seconds_before_next_try / 60))
                login_error = (f"Too many failed logins: {username} is locked. "
                               f"Try again in {minutes} minute{'s' if minutes > 1 else ''}.")
        return super()._render(login_error=login_error, username=username)


class AlertLabNativeAuthenticator(NativeAuthenticator):
    """NativeAuthenticator with plain-words sign-up and lockout messages."""

    def get_handlers(self, app):
        replace = {r"/login": ClearLoginHandler, r"/signup": ClearSignUpHandler}
        return [(path, replace.get(path, handler)) for path, handler in super().get_handlers(app)]


def admins() -> set[str]:
    return {n.strip() for n in settings.get("ALERTLAB_HUB_ADMINS").split(",") if n.strip()}


def configure(c) -> None:
    """Set the authenticator's part of a JupyterHub config from the settings."""
    kind = settings.get("ALERTLAB_AUTHENTICATOR")
    if kind not in AUTHENTICATORS:
        raise ConfigError(f"ALERTLAB_AUTHENTICATOR={kind!r} is not one of {', '.join(AUTHENTICATORS)}")
    c.Authenticator.admin_users = admins()
    if kind == "native":
        import nativeauthenticator

        c.JupyterHub.authenticator_class = AlertLabNativeAuthenticator
        # the library's templates add "Authorize users" to the admin's menu
        c.JupyterHub.template_paths = [str(Path(nativeauthenticator.__file__).parent / "templates")]
        c.NativeAuthenticator.allow_all = True  # who may log in is decided by approval, not by a list
        c.NativeAuthenticator.ask_email_on_signup = True
        c.NativeAuthenticator.open_signup = settings.get("ALERTLAB_OPEN_SIGNUP")
        c.NativeAuthenticator.minimum_password_length = settings.get("ALERTLAB_MIN_PASSWORD_LENGTH")
        c.NativeAuthenticator.check_common_password = True
        c.NativeAuthenticator.allowed_failed_logins = settings.get("ALERTLAB_LOGIN_ATTEMPTS")
        c.NativeAuthenticator.seconds_before_next_try = settings.get("ALERTLAB_LOCKOUT_SECONDS")
    else:
        from oauthenticator.generic import GenericOAuthenticator

        c.JupyterHub.authenticator_class = GenericOAuthenticator
        c.GenericOAuthenticator.scope = settings.get("ALERTLAB_OAUTH_SCOPES").split()
        groups = {g.strip() for g in settings.get("ALERTLAB_OAUTH_ALLOWED_GROUPS").split(",") if g.strip()}
        if groups:
            # checking groups means reading them from the provider (its OAUTH2_GROUPS_KEY claim), which then
            # also sets the users' hub groups at each login
            c.GenericOAuthenticator.manage_groups = True
            c.GenericOAuthenticator.allowed_groups = groups
        else:
            c.GenericOAuthenticator.allow_all = True
