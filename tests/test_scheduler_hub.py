"""A scheduled notebook reads the AlertLab API with a short-lived hub token of
its owner, and with nothing else (the real hub and the `alertlab` service)."""

from __future__ import annotations

import pytest

from alertlab.scheduler import schedules
from test_scheduler import final, make_owner, output_text, sched, worker, write_notebook  # noqa: F401 (fixtures)

pytest.register_assert_rewrite("hubfixtures")
pytest_plugins = ["hubfixtures"]
pytestmark = pytest.mark.services


def test_a_run_calls_the_api_as_its_owner_with_a_short_lived_token(hub, sched, make_owner, worker):  # noqa: F811
    owner = make_owner("alice")
    hub.user(owner.owner)
    write_notebook(owner, "whoami.ipynb",
                   "import os\n"
                   "from alertlab.client.api import Client\n"
                   "me = Client().whoami()\n"
                   "print('api says', me['name'], me['kind'], 'scopes', sorted(me['scopes']))\n"
                   "print('has db url', 'ALERTLAB_DB_URL' in os.environ)")
    s = schedules.create_schedule(owner.owner, "whoami.ipynb", cron="0 0 1 1 *", kernel="python3")
    run = final(owner.owner, schedules.run_now(owner.owner, s["id"])["id"])
    assert run["status"] == "succeeded", run["error"]
    assert run["note"] is None  # a token was given (no "ran without a hub token")
    text = output_text(owner.owner, run["id"])
    assert f"api says {owner.owner} user" in text
    assert "has db url False" in text
    # the token may use the alertlab service as its owner, and no more than that
    scopes = text.split("scopes", 1)[1]
    assert "access:services!service=alertlab" in scopes and "admin" not in scopes
    tokens = hub.api.request("GET", f"users/{owner.owner}/tokens").json()["api_tokens"]
    mine = [t for t in tokens if t["note"] == f"alertlab scheduler run {run['id']}"]
    assert len(mine) == 1 and mine[0]["expires_at"] is not None
