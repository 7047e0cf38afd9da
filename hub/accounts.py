"""Ready-made accounts: a native (username/password) login that is already
approved, and the matching hub user with its admin flag and groups. Used by
`alertlab hub adduser` and the demo; people normally sign up on the hub's page.

The login is a row of NativeAuthenticator's own table (its ``UserInfo`` model,
bcrypt hash), written to the hub's database; the hub reads it at each login."""

from __future__ import annotations

import bcrypt
import sqlalchemy as sa
from sqlalchemy.orm import Session

from alertlab.core.errors import AlertLabError
from alertlab.hub import control
from alertlab.hub.hubapi import HubAPI


def ensure_login(name: str, password: str, email: str | None = None) -> bool:
    """An approved native login for ``name``; an existing one keeps its password. True if created."""
    from nativeauthenticator.orm import UserInfo

    if len(password) < 8:
        raise AlertLabError("a password needs at least 8 characters")
    engine = sa.create_engine(control.hub_db_url())
    try:
        UserInfo.__table__.create(engine, checkfirst=True)
        with Session(engine) as session:
            info = session.query(UserInfo).filter_by(username=name).first()
            if info is not None:
                if not info.is_authorized:
                    info.is_authorized = True
                    session.commit()
                return False
            session.add(UserInfo(username=name, email=email, is_authorized=True,
                                 password=bcrypt.hashpw(password.encode(), bcrypt.gensalt())))
            session.commit()
            return True
    finally:
        engine.dispose()


def ensure_user(name: str, password: str | None = None, *, email: str | None = None, admin: bool | None = None,
                groups: list[str] = (), api: HubAPI | None = None) -> dict:
    """The hub user ``name`` (with a native login when ``password`` is given), in ``groups``."""
    name = name.lower()
    if password is not None:
        ensure_login(name, password, email)
    api = api or HubAPI()
    model = api.ensure_user(name, admin=admin)
    for group in groups:
        api.ensure_group(group, [name])
    return model
