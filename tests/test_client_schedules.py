"""Scheduling from the client, through the real hub and the `alertlab` service."""

from __future__ import annotations

import pytest

import alertlab.client as al
from alertlab.client import APIError
from alertlab.core import db

pytest.register_assert_rewrite("hubfixtures")
from hubfixtures import TAG  # noqa: E402

pytest_plugins = ["hubfixtures"]


@pytest.fixture
def laptop(hub, monkeypatch):
    name = hub.user(f"sky-{TAG}")
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    monkeypatch.setenv("ALERTLAB_URL", hub.service_url)
    monkeypatch.setenv("ALERTLAB_TOKEN", hub.token(name))
    return name


@pytest.mark.services
def test_schedule_runs_and_never_again_from_the_client(laptop, hub):
    created = al.schedule("nightly.ipynb", cron="0 9 * * *", timezone="Europe/Paris", parameters={"days": 1})
    try:
        assert len(created["next_fire_times"]) == 5
        assert created["next_fire_times"][0].endswith("+01:00") or "09:00" in created["next_fire_times"][0]
        assert [s["id"] for s in al.schedules("nightly.ipynb")] == [created["id"]]
        assert al.runs(created["id"]).empty

        with pytest.raises(APIError) as err:
            al.schedule("nightly.ipynb", cron="61 9 * * *")
        assert err.value.status == 422 and "cron" in str(err.value).lower()
        with pytest.raises(ValueError, match="one alert trigger"):
            al.schedule("x.ipynb", on_filter=1, on_area=2)

        with db.engine("alerts").begin() as conn:
            fid = conn.exec_driver_sql("INSERT INTO filters (owner, name, where_sql) VALUES (%s, 'f', 'ndet > 1')",
                                       (laptop,)).lastrowid
        try:
            mark = al.never_again(fid, "ZTF23aaaaaaa", note="seen it")
            assert mark["objectId"] == "ZTF23aaaaaaa"
            with db.engine("alerts").begin() as conn:
                other = conn.exec_driver_sql("INSERT INTO filters (owner, name, where_sql) VALUES "
                                             "('somebody-else', 'g', 'ndet > 1')").lastrowid
            with pytest.raises(APIError) as err:
                al.schedule("x.ipynb", on_filter=other)
            assert err.value.status == 403
        finally:
            with db.engine("alerts").begin() as conn:
                conn.exec_driver_sql("DELETE FROM filters WHERE owner IN (%s, 'somebody-else')", (laptop,))
    finally:
        from alertlab.client.http import send, v1

        send("DELETE", v1(f"schedules/{created['id']}"))
