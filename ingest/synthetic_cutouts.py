"""Image stamps for the synthetic alerts, made once with astropy and re-used.

Making a FITS file per alert would cap the generator at a few hundred alerts a
second, so each survey gets a small pool of realistic stamps (drawn with a fixed
seed: the pool is the same in every process) and alerts pick from it. A stamp
therefore does not show *its* alert's source at its flux or position; it looks and
weighs like a real one (what ingest, storage and display care about).

- ZTF: 63x63 float32 images in DN, gzip-compressed FITS (science, template,
  difference), 12-15 KB each as in the real stream.
- LSST: FITS with the image, a mask and a variance plane (astropy's CCDData
  layout, which Rubin's cutouts follow) and a WCS, uncompressed; the stamp size is
  the detection's bounding box (here 31-61 pixels).
"""

from __future__ import annotations

import functools
import gzip
import io

import numpy as np

POOL_SIZE = 12          # stamp sets per sign of the difference (positive / negative)
ZTF_STAMP = 63


def _psf(size: int, x0: float, y0: float, sigma: float) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size]
    return np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma ** 2)) / (2 * np.pi * sigma ** 2)


def _scene(rng: np.random.Generator, size: int) -> np.ndarray:
    """Unit-flux static sky: a few stars and, often, a host galaxy near the centre."""
    scene = np.zeros((size, size))
    for _ in range(rng.poisson(3)):
        scene += rng.lognormal(7.0, 1.0) * _psf(size, *rng.uniform(0, size, 2), 1.1)
    if rng.random() < 0.6:   # an extended host: a wide elliptical Gaussian, a little off-centre
        c = size / 2 + rng.normal(0, 2, 2)
        y, x = np.mgrid[0:size, 0:size]
        a, b, t = rng.uniform(2, 6), rng.uniform(1.5, 3), rng.uniform(0, np.pi)
        u, v = (x - c[0]) * np.cos(t) + (y - c[1]) * np.sin(t), -(x - c[0]) * np.sin(t) + (y - c[1]) * np.cos(t)
        scene += rng.lognormal(7.5, 0.6) * np.exp(-(u / a) ** 2 / 2 - (v / b) ** 2 / 2) / (2 * np.pi * a * b)
    return scene


def _ztf_fits_gz(data: np.ndarray) -> bytes:
    from astropy.io import fits

    hdu = fits.PrimaryHDU(data.astype(">f4"))
    hdu.header["BUNIT"] = "DN"
    buf = io.BytesIO()
    hdu.writeto(buf)
    return gzip.compress(buf.getvalue(), compresslevel=6, mtime=0)


@functools.cache
def ztf_pool() -> dict[bool, tuple[tuple[bytes, bytes, bytes], ...]]:
    """{positive difference?: ((science, template, difference) gzip FITS, ...)}."""
    rng = np.random.default_rng(20231018)
    pool = {True: [], False: []}
    size = ZTF_STAMP
    for positive in (True, False):
        for _ in range(POOL_SIZE):
            sigma = rng.uniform(0.8, 1.4)                      # seeing 1.9"-3.3" FWHM at 1.01"/pixel
            sky_sci, sky_ref = rng.uniform(80, 400), rng.uniform(150, 450)
            noise_sci, noise_ref = np.sqrt(sky_sci * rng.uniform(0.5, 0.9)), rng.uniform(4, 9)
            scene = _scene(rng, size)
            centre = size // 2 + rng.normal(0, 0.3, 2)
            source = rng.lognormal(7.2, 0.8) * _psf(size, *centre, sigma)
            sci = sky_sci + scene + (source if positive else 0) + rng.normal(0, noise_sci, (size, size))
            ref = sky_ref + scene * rng.uniform(0.9, 1.1) + (0 if positive else source) + \
                rng.normal(0, noise_ref, (size, size))
            diff = (source if positive else -source) + rng.normal(0, np.hypot(noise_sci, noise_ref), (size, size))
            pool[positive].append(tuple(_ztf_fits_gz(img) for img in (sci, ref, diff)))
    return {k: tuple(v) for k, v in pool.items()}


def _lsst_fits(rng: np.random.Generator, data: np.ndarray, variance: float) -> bytes:
    from astropy import units as u
    from astropy.nddata import CCDData, VarianceUncertainty
    from astropy.wcs import WCS

    size = data.shape[0]
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crpix = [size / 2 + 0.5, size / 2 + 0.5]
    wcs.wcs.crval = [rng.uniform(0, 360), rng.uniform(-70, 10)]
    wcs.wcs.cd = [[-0.2 / 3600, 0], [0, 0.2 / 3600]]   # 0.2"/pixel
    mask = np.zeros(data.shape, dtype=np.int32)
    mask[rng.random(data.shape) < 0.002] = 1            # a few flagged pixels
    ccd = CCDData(data.astype(np.float32), unit=u.nJy, wcs=wcs, mask=mask,
                  uncertainty=VarianceUncertainty(np.full(data.shape, variance, dtype=np.float32)))
    buf = io.BytesIO()
    ccd.to_hdu(hdu_mask="MASK", hdu_uncertainty="VARIANCE").writeto(buf)
    return buf.getvalue()


@functools.cache
def lsst_pool() -> dict[bool, tuple[tuple[int, tuple[bytes, bytes, bytes]], ...]]:
    """{positive difference?: ((stamp size, (difference, science, template) FITS)), ...)}
    (the alert's field order)."""
    rng = np.random.default_rng(20250623)
    pool = {True: [], False: []}
    for positive in (True, False):
        for _ in range(POOL_SIZE // 2):
            size = int(rng.choice([31, 31, 31, 41, 51, 61]))
            sigma, noise = rng.uniform(1.5, 2.5), rng.uniform(40, 120)   # 0.7"-1.2" seeing at 0.2"/pixel
            scene = _scene(rng, size) * 20
            source = rng.lognormal(9.5, 0.8) * _psf(size, size / 2, size / 2, sigma)
            sci = scene + (source if positive else 0) + rng.normal(0, noise, (size, size))
            ref = scene + (0 if positive else source) + rng.normal(0, noise / 3, (size, size))
            diff = (source if positive else -source) + rng.normal(0, noise * 1.05, (size, size))
            pool[positive].append((size, (_lsst_fits(rng, diff, (noise * 1.05) ** 2),
                                          _lsst_fits(rng, sci, noise ** 2), _lsst_fits(rng, ref, (noise / 3) ** 2))))
    return {k: tuple(v) for k, v in pool.items()}
