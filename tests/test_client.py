"""alertlab.client outside the hub (a laptop, a script): ALERTLAB_URL and
ALERTLAB_TOKEN, answers as DataFrames, the server's refusals as exceptions."""

from __future__ import annotations

import pandas as pd
import pytest

import alertlab.client as al
from alertlab.client import APIError, Client, TruncatedResult
from alertlab.core.errors import AlertLabError
pytest.register_assert_rewrite("hubfixtures")
from hubfixtures import TAG

pytest_plugins = ["hubfixtures"]


@pytest.fixture
def laptop(hub, monkeypatch):
    """The environment of a script outside the hub: ALERTLAB_URL and a token from the hub."""
    name = hub.user(f"fay-{TAG}")
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    monkeypatch.setenv("ALERTLAB_URL", hub.service_url)
    monkeypatch.setenv("ALERTLAB_TOKEN", hub.token(name))
    return name


@pytest.mark.services
def test_query_returns_a_dataframe(laptop, alert_objects):
    df = al.query(alert_objects["sql"])
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == ["objectId", "ndet"]
    assert [tuple(r) for r in df.itertuples(index=False)] == alert_objects["rows"]
    assert df["ndet"].dtype.kind == "i"
    assert al.whoami()["name"] == laptop


@pytest.mark.services
def test_paging_and_truncation(laptop, alert_objects):
    with pytest.warns(TruncatedResult, match="cut at 1 rows"):
        df = al.query(alert_objects["sql"], limit=1)
    assert list(df["objectId"]) == [alert_objects["rows"][0][0]]
    assert list(al.query(alert_objects["sql"], limit=5, offset=2)["ndet"]) == [8]


@pytest.mark.services
def test_the_servers_refusals_become_exceptions_with_its_message(laptop, hub, monkeypatch):
    with pytest.raises(APIError) as err:
        al.query("DROP TABLE objects")
    assert err.value.status == 400
    assert str(err.value) == "400: only SELECT statements are allowed (this is a DROP statement)"
    with pytest.raises(APIError, match=r"^400: .*nosuchcolumn"):
        al.query("SELECT nosuchcolumn FROM objects")
    with pytest.raises(APIError, match=r"^422: limit: "):
        al.query("SELECT 1", limit=0)
    monkeypatch.setenv("ALERTLAB_TOKEN", "a-revoked-token")
    with pytest.raises(APIError, match=r"^401: invalid or expired token$"):
        al.query("SELECT 1")
    with pytest.raises(APIError, match=r"^0: cannot reach http://127.0.0.1:9/"):
        Client(url="http://127.0.0.1:9/", token="x").whoami()


def test_where_url_and_token_come_from(monkeypatch):
    for name in ("ALERTLAB_URL", "ALERTLAB_TOKEN", "JUPYTERHUB_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(AlertLabError, match="no AlertLab URL: set ALERTLAB_URL"):
        Client()
    monkeypatch.setenv("ALERTLAB_URL", "http://hub.example.org/services/alertlab")
    with pytest.raises(AlertLabError, match="no API token"):
        Client()
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "from-the-server")  # inside a user's server
    c = Client()
    assert (c.url, c.token) == ("http://hub.example.org/services/alertlab/", "from-the-server")
    monkeypatch.setenv("ALERTLAB_TOKEN", "made-on-the-token-page")  # an explicit token wins
    assert Client().token == "made-on-the-token-page"
    assert Client(url="http://other/", token="arg").url == "http://other/"
