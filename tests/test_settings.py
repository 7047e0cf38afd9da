"""Every setting is documented in the README table, with its real default."""

import re

import pytest

from alertlab.core import settings
from alertlab.core.errors import ConfigError
from conftest import ROOT


def _readme_rows():
    rows = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        m = re.match(r"\|\s*`(ALERTLAB_[A-Z_]+)`\s*\|\s*([^|]*)\|", line)
        if m:
            rows[m.group(1)] = m.group(2).strip()
    return rows


def test_every_setting_is_in_the_readme_table():
    rows = _readme_rows()
    undocumented = sorted(set(settings.SETTINGS) - set(rows))
    assert not undocumented, f"settings missing from README's table: {undocumented}"
    stale = sorted(set(rows) - set(settings.SETTINGS))
    assert not stale, f"README documents settings that do not exist: {stale}"


def test_readme_defaults_match_the_code():
    for name, documented in _readme_rows().items():
        default = settings.SETTINGS[name].default
        if default:
            assert documented == f"`{default}`", f"{name}: README says {documented}, code says {default!r}"


def test_settings_are_read_lazily_and_validated(monkeypatch, tmp_path):
    monkeypatch.setenv("ALERTLAB_HOME", str(tmp_path))
    assert settings.home() == tmp_path
    monkeypatch.setenv("ALERTLAB_SERVICE_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="ALERTLAB_SERVICE_TIMEOUT='soon' is not valid"):
        settings.get("ALERTLAB_SERVICE_TIMEOUT")
