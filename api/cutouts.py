"""Cutout stamps as FITS or PNG.

``cutouts.data`` holds each stamp as the survey sent it: gzip-compressed FITS
for ZTF, plain FITS (possibly with several HDUs: image, variance, mask) for
LSST. ``fits_bytes`` gives plain FITS; ``png_bytes`` renders the first 2-D
image the way astronomers look at stamps: science and template with a zscale
interval (IRAF/ds9) and a linear stretch, the difference image symmetric
around zero (zero is mid-grey, positive is light, negative dark), north up
(FITS row 0 at the bottom), enlarged with nearest-neighbour pixels so the
pixels stay pixels. Blank (NaN) pixels are drawn black."""

from __future__ import annotations

import gzip
import io

import numpy as np

from alertlab.core.errors import AlertLabError

KINDS = ("science", "template", "difference")


class BadCutout(AlertLabError):
    """Stored bytes that are not a FITS image."""


def fits_bytes(data: bytes) -> bytes:
    """The stored stamp as plain FITS bytes."""
    data = bytes(data)
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise BadCutout(f"the stored cutout is not readable: {exc}") from None
    return data


def image(data: bytes) -> np.ndarray:
    """The first 2-D image of the stamp, as float64."""
    from astropy.io import fits

    try:
        with fits.open(io.BytesIO(fits_bytes(data)), memmap=False) as hdus:
            for hdu in hdus:
                if hdu.data is not None and getattr(hdu.data, "ndim", 0) == 2:
                    return np.asarray(hdu.data, dtype=np.float64)
    except (OSError, ValueError, TypeError) as exc:
        raise BadCutout(f"the stored cutout is not a FITS image: {exc}") from None
    raise BadCutout("the stored cutout holds no 2-D image")


def scaled(pixels: np.ndarray, kind: str) -> np.ndarray:
    """Grey levels 0..255 (uint8) of the image, with the interval described in the module docstring."""
    finite = np.isfinite(pixels)
    if not finite.any():
        return np.zeros(pixels.shape, dtype=np.uint8)
    values = pixels[finite]
    from astropy.visualization import ZScaleInterval

    try:
        lo, hi = ZScaleInterval().get_limits(values)
    except (ValueError, IndexError):
        lo, hi = float(values.min()), float(values.max())
    if kind == "difference":
        half = max(abs(lo), abs(hi))
        lo, hi = -half, half
    if not hi > lo:
        lo, hi = float(values.min()), float(values.max())
    if not hi > lo:
        hi = lo + 1.0
    out = np.clip((np.where(finite, pixels, lo) - lo) / (hi - lo), 0.0, 1.0)
    grey = np.round(out * 255.0).astype(np.uint8)
    grey[~finite] = 0
    return grey


def png_bytes(data: bytes, kind: str, size: int = 256) -> bytes:
    """A PNG of the stamp at about ``size`` pixels on its longer side (whole-pixel enlargement)."""
    from PIL import Image

    grey = scaled(image(data), kind)[::-1]  # FITS rows go up; image rows go down
    factor = max(1, size // max(grey.shape))
    img = Image.fromarray(grey, mode="L")
    if factor > 1:
        img = img.resize((grey.shape[1] * factor, grey.shape[0] * factor), Image.NEAREST)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=False)
    return out.getvalue()
