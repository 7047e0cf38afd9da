"""A short-lived hub token for the owner of a run, so the notebook reaches
the AlertLab API with exactly its owner's rights (and nothing else: the run's
environment holds no database credentials).

The token is made through the hub's REST API (POST /hub/api/users/{name}/tokens
with ``expires_in``) with the `scheduler` hub service's token (whose only
rights are to make tokens), and expires on
its own shortly after the run's timeout. With no hub configured on this
machine the run goes ahead without one, and the run record says so."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

# What a scheduled notebook may do with its token: use the alertlab service as its owner.
SCOPES = ["access:services!service=alertlab", "read:users:name!user", "read:users:groups!user"]


def hub_configured() -> bool:
    try:
        from alertlab.hub import control
    except ImportError:
        return False
    return bool(control.state().load().get("hub_port")) and control.state().running()


def for_run(owner: str, run_id: int, lifetime: float) -> tuple[dict, str | None]:
    """(environment variables to add, a note for the run record or None)."""
    if not hub_configured():
        return {}, "no hub is configured on this machine: the notebook ran without a hub token"
    from alertlab.hub import control
    from alertlab.hub.hubapi import HubAPI

    api = None
    try:
        api = HubAPI(token=control.scheduler_token())
        token = api.new_token(owner, note=f"alertlab scheduler run {run_id}", scopes=SCOPES,
                              expires_in=max(60, int(lifetime)))
    except Exception as exc:  # the hub is down or refused (HubAPIError, httpx errors): run anyway, say why
        log.warning("no hub token for %s (run %s): %s", owner, run_id, exc)
        return {}, f"the hub did not give a token ({exc}): the notebook ran without one"
    finally:
        if api is not None:
            api.close()
    env = {"JUPYTERHUB_API_TOKEN": token, "ALERTLAB_TOKEN": token, "ALERTLAB_URL": control.service_url(),
           "JUPYTERHUB_API_URL": control.api_url(), "JUPYTERHUB_USER": owner}
    return env, None
