"""docs/schema.md documents every table and column users can query."""

import re

import pytest

from alertlab.core import db
from conftest import ROOT


@pytest.mark.services
def test_every_alert_table_and_column_is_documented(services):
    text = (ROOT / "docs" / "schema.md").read_text()
    documented = set(re.findall(r"`([A-Za-z0-9_{}]+)`", text))
    with db.engine("alerts").connect() as conn:
        tables = [r[0] for r in conn.exec_driver_sql("SHOW TABLES") if r[0] != "alembic_version"]
        missing = []
        for table in tables:
            if table not in documented and f"## {table}" not in text and table not in text:
                missing.append(table)
            for (col, *_rest) in conn.exec_driver_sql(f"SHOW COLUMNS FROM `{table}`"):
                generic = re.sub(r"^[ugrizy]_", "{b}_", col)
                if col not in documented and generic not in documented:
                    missing.append(f"{table}.{col}")
    assert not missing, f"undocumented in docs/schema.md: {missing}"
