"""Light-curve features (pure): what an astronomer reads in the objects table."""

import math

import numpy as np
import pytest

from alertlab.ingest.features import ema, mean_position, object_features
from alertlab.ingest.rows import clean, njy_to_mag


def _det(rows):
    cols = list(zip(*rows))
    return {"detectionId": np.array(cols[0]), "mjd": np.array(cols[1], float), "band": np.array(cols[2]),
            "mag": np.array(cols[3], float), "ra": np.full(len(rows), 10.0), "decl": np.full(len(rows), -5.0),
            "reliability": np.array([0.9] * len(rows))}


def test_per_band_statistics_rate_and_colour_in_any_order():
    rows = [(1, 100.0, "g", 19.0), (2, 101.0, "r", 18.5), (3, 102.0, "g", 18.0), (4, 104.0, "g", 17.0),
            (5, 104.5, "r", 18.0)]
    forward = object_features(_det(rows))
    backward = object_features(_det(rows[::-1]))
    assert forward == backward  # arrival order does not matter
    f = forward
    assert f["ndet"] == 5 and f["firstmjd"] == 100.0 and f["lastmjd"] == 104.5
    assert f["g_ndet"] == 3 and f["r_ndet"] == 2 and f["i_ndet"] == 0 and f["i_mean"] is None
    assert f["g_mean"] == pytest.approx(18.0) and f["g_median"] == 18.0
    assert f["g_std"] == pytest.approx(1.0)
    assert (f["g_min"], f["g_max"], f["g_latest"]) == (17.0, 19.0, 17.0)
    assert f["g_rate"] == pytest.approx(-0.5)           # brightening 1 mag in 2 days
    assert f["r_rate"] == pytest.approx(-0.5 / 3.5)
    assert f["g_minus_r"] == pytest.approx(-1.0) and f["g_minus_r_dt"] == pytest.approx(0.5)
    assert f["latest_mag"] == 18.0 and f["latest_band"] == "r" and f["latest_detectionId"] == 5


def test_single_detection_has_no_spread_or_rate():
    f = object_features(_det([(7, 50.0, "r", 20.0)]))
    assert f["r_std"] is None and f["r_rate"] is None and f["g_minus_r"] is None
    assert f["r_ema2"] == 20.0


def test_ema_follows_an_outburst_faster_with_short_time_constant():
    mjd = np.array([0, 1, 2, 3, 3.5], float)
    mag = np.array([20, 20, 20, 20, 16], float)
    fast, slow = ema(mjd, mag, 2.0), ema(mjd, mag, 28.0)
    assert 16 < fast < slow < 20
    assert fast == pytest.approx(20 - 4 * (1 - math.exp(-0.5 / 2)))


def test_mean_position_across_ra_zero_and_at_the_pole():
    lon, lat = mean_position(np.array([359.9999, 0.0001]), np.array([10.0, 10.0]))
    assert min(lon, 360 - lon) < 1e-6 and lat == pytest.approx(10.0)
    lon, lat = mean_position(np.array([0.0, 180.0]), np.array([89.9999, 89.9999]))
    assert lat == pytest.approx(90.0, abs=1e-3)


def test_lsst_flux_to_magnitude():
    assert njy_to_mag(3631e9) == pytest.approx(0.0, abs=1e-3)  # 3631 Jy is AB 0
    assert njy_to_mag(1.0) == pytest.approx(31.4)
    assert njy_to_mag(-5.0) is None and njy_to_mag(0.0) is None and njy_to_mag(None) is None


@pytest.mark.parametrize("unknown", [None, math.nan, math.inf, -math.inf, -999.0, -99999.0, -999, -99999,
                                     np.float64("nan"), np.float64(-999.0)])
def test_values_surveys_write_for_unknown_are_stored_as_null(unknown):
    assert clean(unknown) is None


@pytest.mark.parametrize("value", [0, 0.0, 17.3, -999.5, 1e308, -998, True, False, "t", np.float64(20.1),
                                   np.int32(5)])
def test_real_values_are_kept_as_they_are(value):
    assert clean(value) is value


def test_features_equal_numpys_statistics_on_random_light_curves():
    """The features are plain Python for speed; they must agree with numpy's definitions (sample std with
    ddof=1, median of an even count the mean of the middle two), with unknown magnitudes and positions
    (None or NaN) left out, whatever the row order."""
    rng = np.random.default_rng(7)
    for _ in range(300):
        n = int(rng.integers(1, 40))
        mjd = np.round(rng.uniform(60000, 60030, n), 3)
        band = rng.choice(list("grib?"), n)
        mag = rng.uniform(15, 21, n)
        mag[rng.random(n) < 0.1] = np.nan
        ra, dec = rng.uniform(0, 360, n), rng.uniform(-90, 90, n)
        det = {"detectionId": np.arange(n), "mjd": mjd, "band": band, "mag": mag, "ra": ra, "decl": dec,
               "reliability": rng.random(n)}
        as_lists = {k: [None if isinstance(x, float) and math.isnan(x) else x for x in v.tolist()]
                    for k, v in det.items()}
        perm = rng.permutation(n)
        shuffled = {k: [v[i] for i in perm] for k, v in as_lists.items()}
        f = object_features(det)
        assert object_features(shuffled) == pytest.approx(f, nan_ok=True)
        order = np.lexsort((det["detectionId"], mjd))
        for b in "gri":
            sel = order[(band[order] == b) & ~np.isnan(mag[order])]
            assert f[f"{b}_ndet"] == len(sel)
            if len(sel):
                m = mag[sel]
                assert f[f"{b}_mean"] == pytest.approx(np.mean(m), rel=1e-12)
                assert f[f"{b}_median"] == pytest.approx(np.median(m), rel=1e-12)
                assert f[f"{b}_min"] == np.min(m) and f[f"{b}_max"] == np.max(m) and f[f"{b}_latest"] == m[-1]
                assert f[f"{b}_std"] == (pytest.approx(np.std(m, ddof=1), rel=1e-9) if len(m) > 1 else None)
            else:
                assert f[f"{b}_mean"] is None and f[f"{b}_ema8"] is None
        known = order[~np.isnan(mag[order])]
        assert f["latest_mag"] == (mag[known[-1]] if len(known) else None)
        r, d = np.radians(ra), np.radians(dec)
        x, y, z = np.mean(np.cos(d) * np.cos(r)), np.mean(np.cos(d) * np.sin(r)), np.mean(np.sin(d))
        assert f["decl"] == pytest.approx(math.degrees(math.atan2(z, math.hypot(x, y))), abs=1e-9)
