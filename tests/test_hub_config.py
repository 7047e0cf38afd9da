"""The hub's configuration logic, without a hub: account names, sign-up checks,
group-admin roles, and switching the authenticator by setting."""

from __future__ import annotations

import re

import pytest
from traitlets.config import Config

from alertlab.core.errors import ConfigError
from alertlab.hub import auth, groupadmins, unixusers


@pytest.mark.parametrize("hub_name,expected", [
    ("alice", "alertlab-alice"),
    ("bob-2", "alertlab-bob-2"),
    ("a" * 23, "alertlab-" + "a" * 23),
])
def test_unix_names_of_plain_hub_names(hub_name, expected):
    assert unixusers.unix_name(hub_name) == expected


@pytest.mark.parametrize("hub_name", ["jane.doe@example.org", "a" * 24, "Zoë", "-x", ""])
def test_unix_names_of_other_hub_names_are_valid_and_distinct(hub_name):
    name = unixusers.unix_name(hub_name)
    assert re.fullmatch(r"alertlab-[a-z0-9_][a-z0-9_-]*", name) and len(name) <= 32
    assert name != unixusers.unix_name(hub_name + "x")


def test_signup_problems_in_plain_words(monkeypatch):
    native = auth.AlertLabNativeAuthenticator(add_new_table=False, ask_email_on_signup=True,
                                              minimum_password_length=10, check_common_password=True)
    ok = ("newbie", "new.bie+x@astro.example.org", "kilonova-in-ngc4993")
    assert auth.signup_problem(native, *ok) is None
    assert "at least 10 characters" in auth.signup_problem(native, "newbie", ok[1], "short-pw")
    assert "not an e-mail address" in auth.signup_problem(native, "newbie", "newbie@localhost", ok[2])
    assert "not an e-mail address" in auth.signup_problem(native, "newbie", "", ok[2])
    assert "too common" in auth.signup_problem(native, "newbie", ok[1], "1234567890")
    assert "spaces, commas or slashes" in auth.signup_problem(native, "new/bie", ok[1], ok[2])


def test_group_admin_roles(tmp_path, monkeypatch):
    monkeypatch.setenv("ALERTLAB_HOME", str(tmp_path))
    groupadmins.set_admin("demo-team", "alice")
    groupadmins.set_admin("Lens Hunters", "bob")
    groupadmins.set_admin("demo-team", "carol")
    groupadmins.set_admin("demo-team", "alice", admin=False)
    roles = {r["users"][0]: r for r in groupadmins.roles()}
    assert roles["carol"]["name"] == "group-admins-demo-team"
    assert "groups!group=demo-team" in roles["carol"]["scopes"]
    assert re.fullmatch(r"group-admins-lens-hunters-[0-9a-f]{6}", roles["bob"]["name"])
    assert "groups!group=Lens Hunters" in roles["bob"]["scopes"]
    assert set(roles) == {"bob", "carol"}


def test_native_is_the_default_with_the_settings_applied(monkeypatch):
    monkeypatch.delenv("ALERTLAB_AUTHENTICATOR", raising=False)
    monkeypatch.setenv("ALERTLAB_LOGIN_ATTEMPTS", "4")
    monkeypatch.setenv("ALERTLAB_OPEN_SIGNUP", "yes")
    c = Config()
    auth.configure(c)
    assert c.JupyterHub.authenticator_class is auth.AlertLabNativeAuthenticator
    native = auth.AlertLabNativeAuthenticator(add_new_table=False, config=c)
    assert (native.allowed_failed_logins, native.open_signup, native.minimum_password_length) == (4, True, 8)
    assert native.ask_email_on_signup and native.check_common_password


def test_generic_oauth_by_setting_alone(monkeypatch):
    from oauthenticator.generic import GenericOAuthenticator

    monkeypatch.setenv("ALERTLAB_AUTHENTICATOR", "generic-oauth")
    monkeypatch.setenv("ALERTLAB_OAUTH_ALLOWED_GROUPS", "astro, ops")
    monkeypatch.setenv("OAUTH_CLIENT_ID", "alertlab-hub")
    monkeypatch.setenv("OAUTH2_AUTHORIZE_URL", "https://sso.example.org/authorize")
    monkeypatch.setenv("OAUTH2_TOKEN_URL", "https://sso.example.org/token")
    monkeypatch.setenv("OAUTH2_USERDATA_URL", "https://sso.example.org/userinfo")
    c = Config()
    auth.configure(c)
    assert c.JupyterHub.authenticator_class is GenericOAuthenticator
    oauth = GenericOAuthenticator(config=c)
    assert oauth.authorize_url == "https://sso.example.org/authorize" and oauth.client_id == "alertlab-hub"
    assert oauth.allowed_groups == {"astro", "ops"} and oauth.scope == ["openid", "profile", "email"]


@pytest.mark.parametrize("env,value,message", [
    ("ALERTLAB_AUTHENTICATOR", "ldap", "not one of native, generic-oauth"),
    ("ALERTLAB_MIN_PASSWORD_LENGTH", "6", "must be at least 8"),
])
def test_bad_authentication_settings_are_refused(monkeypatch, env, value, message):
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=message):
        auth.configure(Config())
