"""The ingest's running summary (what `alertlab ingest` prints and shows as progress)."""

from alertlab.ingest import runner
from alertlab.ingest.pipeline import BatchStats


def test_summary_reports_counts_and_latency_quantiles():
    totals = runner.Totals()
    totals.add(BatchStats(messages=3, alerts=3, new_alerts=2, rejects=1, events=5))
    totals.latencies.extend([0.1, 0.2, 0.3, 0.4, 10.0])
    text = totals.summary()
    assert "3 alerts (2 new) from 3 messages, 1 rejected" in text
    # the quantiles of what was measured: never beyond the slowest alert (the default method extrapolates)
    assert "latency p50 0.30s p95 8.08s" in text


def test_a_long_run_keeps_only_the_latest_latencies(monkeypatch):
    """A months-long ingest must not grow a list of every alert's latency; the summary says what it covers."""
    monkeypatch.setattr(runner, "LATENCY_WINDOW", 100)
    totals = runner.Totals()
    assert runner.Totals(window=7).window == 7  # `alertlab ingest --latency-window 7`
    totals.latencies.extend([50.0] * 1000)   # an early backlog...
    totals.latencies.extend([0.5] * 100)     # ...then the latest 100 alerts are fast
    assert len(totals.latencies) == 100
    text = totals.summary()
    assert "latency p50 0.50s p95 0.50s (latest 100 alerts)" in text
