"""The API's pure logic, without services: cone ranges, the cone CSV reader,
the rate limiter, the filter rule, the streamed formats, cutout rendering."""

from __future__ import annotations

import gzip
import io
import json

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from alertlab.api import cone, conecsv, cutouts, formats
from alertlab.api.auth import HubUser
from alertlab.api.classes import POWER, USER, user_class
from alertlab.api.dryrun import MIN_NIGHT_OBJECTS, Night, judge
from alertlab.api.ratelimit import Limiter
from alertlab.ingest.features import sky_columns
from alertlab.ingest.watchlists import InvalidCones, separation_arcsec


# -- cone search -----------------------------------------------------------------------------------

@pytest.mark.parametrize("ra,dec,radius", [(123.4, -45.6, 2.0), (0.0005, 0.0, 30.0), (359.9995, 10.0, 30.0),
                                           (10.0, 89.999, 60.0), (200.0, -89.99, 3600.0), (45.0, 0.0, 0.3),
                                           (77.7, 41.8, 3600.0), (10.0, 10.0, 0.001)])
def test_cone_ranges_hold_every_object_within_the_radius(ra, dec, radius):
    """Random objects around the centre: every one within the radius falls in a range, and the
    ranges are not much more than the cone."""
    rng = np.random.default_rng(7)
    n = 20000
    spread = radius * 3 / 3600.0
    dec_o = np.clip(dec + rng.uniform(-spread, spread, n), -90, 90)
    ra_o = (ra + rng.uniform(-spread, spread, n) / max(np.cos(np.radians(dec_o)).min(), 1e-3)) % 360
    pix = sky_columns(ra_o, dec_o)["healpix"]
    inside = separation_arcsec(np.full(n, ra), np.full(n, dec), ra_o, dec_o) <= radius
    assert inside.sum() > 20
    covered = np.zeros(n, dtype=bool)
    for lo, hi in cone.ranges(ra, dec, radius):
        covered |= (pix >= lo) & (pix < hi)
    assert not (inside & ~covered).any(), "an object within the radius is outside every range"
    assert covered.sum() < 4 * inside.sum()  # candidates: a few cells about the size of the cone
    assert len(cone.ranges(ra, dec, radius)) <= 16


def test_the_smallest_radius_still_gives_a_range():
    assert len(cone.ranges(10.0, 10.0, 5e-324)) == 1  # a 1 mas cell: cdshealpix's deepest search


def test_cone_search_keeps_exactly_the_objects_within_the_radius_nearest_first():
    rng = np.random.default_rng(3)
    ra0, dec0, radius = 150.0, 20.0, 10.0
    ra = ra0 + rng.uniform(-0.01, 0.01, 500)
    dec = dec0 + rng.uniform(-0.01, 0.01, 500)
    rows = [(f"o{i}", ra[i], dec[i], int(p)) for i, p in enumerate(sky_columns(ra, dec)["healpix"])]

    def fetch(sql, params):  # what MariaDB does with the condition
        ranges = list(zip(params[::2], params[1::2]))
        assert sql.count("BETWEEN") == len(ranges)
        return [r[:3] for r in rows if any(lo <= r[3] <= hi for lo, hi in ranges)]

    found, seps = cone.search(fetch, ra0, dec0, radius, ["objectId", "ra", "decl"])
    truth = separation_arcsec(np.full(500, ra0), np.full(500, dec0), ra, dec)
    assert sorted(r[0] for r in found) == sorted(f"o{i}" for i in np.flatnonzero(truth <= radius))
    assert seps == sorted(seps) and max(seps) <= radius


# -- cone CSV ---------------------------------------------------------------------------------------

def test_csv_with_header_keeps_good_rows_and_reports_bad_ones_by_line():
    text = ("name,dec,ra,radius,extra\n"
            "a,20,10,1.5,x\n"
            "b,abc,10,,x\n"         # line 3: dec not a number
            "\n"
            "# a comment\n"
            "c,95,10,,x\n"          # line 6: dec out of range
            "d,-30,370.5,,x\n"      # line 7: ra out of range
            "e,-30,350,0,x\n"       # line 8: radius 0
            "f,-30,-10,3600,x\n"    # kept: ra wraps to 350
            '"g, with comma",1,2,,x\n'
            f"{'h' * 300},1,2,,x\n"  # line 11: name too long
            "i,1\n")               # line 12: too few fields for ra
    parsed = conecsv.parse_cones(io.StringIO(text))
    assert list(parsed.names) == ["a", "f", "g, with comma"]
    assert list(parsed.ra) == [10.0, 350.0, 2.0] and list(parsed.dec) == [20.0, -30.0, 1.0]
    assert parsed.radius[0] == 1.5 and np.isnan(parsed.radius[2]) and parsed.radius[1] == 3600
    assert [(e.line, e.reason.split(":")[0]) for e in parsed.errors] == [
        (3, "dec is not a number"), (6, "dec must be between -90 and 90 degrees"),
        (7, "ra must be in degrees, between 0 and 360"), (8, "radius must be more than 0 and at most 3600 arcsec"),
        (11, "name is longer than 255 characters"), (12, "expected at least 3 fields, found 2")]
    assert parsed.nerrors == 6


def test_the_csv_radius_limit_is_the_watchlists():
    from alertlab.ingest.watchlists import MAX_RADIUS_ARCSEC

    assert conecsv.MAX_RADIUS_ARCSEC == MAX_RADIUS_ARCSEC


def test_csv_without_header_is_ra_dec_radius_name():
    parsed = conecsv.parse_cones(io.StringIO("10.5,-3,2,first\n11,4\n"))
    assert list(parsed.ra) == [10.5, 11.0] and parsed.names == ["first", None] and np.isnan(parsed.radius[1])


@pytest.mark.parametrize("text,message", [
    ("", "holds no cones"),
    ("name,radius\nx,1\n", "names no ra and no dec column"),
    ("1,2\n3,4\n5,6\n", "too many cones: a watchlist holds at most 2"),
])
def test_csv_refused_as_a_whole(text, message):
    with pytest.raises(InvalidCones, match=message):
        conecsv.parse_cones(io.StringIO(text), max_cones=2)


def test_csv_error_list_is_capped_but_counted():
    text = "ra,dec\n" + "x,1\n" * (conecsv.MAX_ERRORS_SHOWN + 50) + "1,2\n"
    parsed = conecsv.parse_cones(io.StringIO(text))
    assert len(parsed) == 1 and parsed.nerrors == conecsv.MAX_ERRORS_SHOWN + 50
    assert len(parsed.errors) == conecsv.MAX_ERRORS_SHOWN


# -- rate limiting ----------------------------------------------------------------------------------

def test_token_bucket_allows_a_burst_then_the_rate_and_says_how_long_to_wait():
    now = [0.0]
    lim = Limiter(clock=lambda: now[0])
    assert [lim.take(("user", "a"), 60) for _ in range(60)] == [0.0] * 60
    assert lim.take(("user", "a"), 60) == pytest.approx(1.0)  # 60/min: one more each second
    assert lim.take(("user", "b"), 60) == 0.0  # buckets are per caller
    now[0] = 0.5
    assert lim.take(("user", "a"), 60) == pytest.approx(0.5)
    now[0] = 1.0
    assert lim.take(("user", "a"), 60) == 0.0
    assert lim.take(("user", "a"), 60) > 0


def test_query_slots_are_counted_per_user():
    lim = Limiter()
    assert lim.acquire(("q", "a"), 2) and lim.acquire(("q", "a"), 2)
    assert not lim.acquire(("q", "a"), 2)
    assert lim.acquire(("q", "b"), 2)
    lim.release(("q", "a"))
    assert lim.acquire(("q", "a"), 2)


def test_power_users_are_admins_and_the_power_group(monkeypatch):
    monkeypatch.setenv("ALERTLAB_POWER_GROUP", "heavy")
    assert user_class(HubUser("a", groups=("heavy",))) == POWER
    assert user_class(HubUser("a", admin=True)) == POWER
    assert user_class(HubUser("a", groups=("power-users",))) == USER


# -- the filter rule --------------------------------------------------------------------------------

def test_a_filter_is_judged_on_its_worst_full_night():
    big = MIN_NIGHT_OBJECTS * 10
    share, reason = judge([Night(60000, big, big // 20), Night(60001, big, big // 4), Night(60002, 5, 5)], 0.1)
    assert share == 0.25 and "25.0% of the objects of night 60001" in reason and "at most 10.0%" in reason
    share, reason = judge([Night(60000, big, big // 20), Night(60002, 5, 5)], 0.1)  # the tiny night is ignored
    assert share == 0.05 and reason is None
    share, reason = judge([Night(60000, 10, 5), Night(60001, 10, 0)], 0.1)  # only small nights: the whole window
    assert share == 0.25 and "of the window" in reason
    assert judge([], 0.1) == (0.0, None)


# -- formats ----------------------------------------------------------------------------------------

def _read_json(chunks) -> dict:
    return json.loads(b"".join(chunks))


@pytest.mark.parametrize("n,limit", [(0, 5), (3, 5), (5, 5), (6, 5), (formats.CHUNK_ROWS * 2 + 7, 10**6),
                                     (formats.CHUNK_ROWS * 2, formats.CHUNK_ROWS * 2)])
def test_streamed_json_is_one_valid_document(n, limit):
    rows = iter([(i, float("nan"), f"x{i}") for i in range(n)])
    doc = _read_json(formats.json_result_chunks(["a", "b", "c"], rows, limit))
    assert doc["columns"] == ["a", "b", "c"]
    assert len(doc["rows"]) == min(n, limit) and doc["truncated"] is (n > limit)
    assert all(r[1] is None for r in doc["rows"])


def test_streamed_json_reports_an_error_midway():
    def rows():
        yield (1,)
        raise TimeoutError("stopped")

    doc = _read_json(formats.json_result_chunks(["a"], rows(), 10, error_of=str))
    assert doc == {"columns": ["a"], "rows": [[1]], "truncated": True, "error": "stopped"}


def test_csv_chunks_and_format_choice():
    text = b"".join(formats.csv_chunks(["a", "b"], [(1, None), ("x,y", {"k": 1})])).decode()
    assert text == 'a,b\n1,\n"x,y","{""k"": 1}"\n'
    assert formats.choose(None, "text/csv") == "csv"
    assert formats.choose(None, "application/json, text/csv") == "json"
    assert formats.choose(None, "*/*") == "json"
    assert formats.choose("csv", "application/json") == "csv"


# -- cutouts ----------------------------------------------------------------------------------------

def _fits(data, gz=True) -> bytes:
    out = io.BytesIO()
    fits.PrimaryHDU(data).writeto(out)
    return gzip.compress(out.getvalue()) if gz else out.getvalue()


def test_cutout_fits_is_plain_and_png_is_north_up_and_enlarged():
    img = np.zeros((63, 63))
    img[50:, :] = 1000.0  # bright at the top of the sky (high FITS rows)
    img += np.random.default_rng(1).normal(0, 1, img.shape)
    stored = _fits(img)
    assert fits.getdata(io.BytesIO(cutouts.fits_bytes(stored))).shape == (63, 63)
    png = Image.open(io.BytesIO(cutouts.png_bytes(stored, "science", 256)))
    assert png.size == (252, 252) and png.mode == "L"
    pixels = np.asarray(png)
    assert pixels[:20].mean() > pixels[-100:].mean() + 100  # the bright rows are drawn at the top


def test_difference_png_is_symmetric_around_zero_and_nan_is_black():
    img = np.zeros((20, 20))
    img[:5] = -50.0
    img[15:] = 50.0
    img[10, 10] = np.nan
    grey = cutouts.scaled(img, "difference")
    assert grey[7, 3] in (127, 128)  # zero: mid-grey
    assert grey[2, 2] < 20 and grey[17, 2] > 235 and grey[10, 10] == 0


def test_a_cutout_that_is_not_fits_is_a_clear_error():
    with pytest.raises(cutouts.BadCutout):
        cutouts.png_bytes(gzip.compress(b"not a fits file" * 100), "science")
    lsst_like = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones((5, 5)))]).writeto(lsst_like)
    assert cutouts.image(lsst_like.getvalue()).shape == (5, 5)  # the first 2-D image, not the empty primary
