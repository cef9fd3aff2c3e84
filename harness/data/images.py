"""Image reading and the clean images bundled with scikit-image (no download needed)."""
from __future__ import annotations

import pathlib

import numpy as np
from PIL import Image

from harness.errors import HarnessError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def read_rgb(path: str | pathlib.Path) -> np.ndarray:
    """Read an image file as H×W×3 uint8 RGB (grayscale and RGBA are converted)."""
    path = pathlib.Path(path)
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except (OSError, ValueError) as exc:
        raise HarnessError(f"cannot read image '{path}': {exc}; replace or remove the file") from None


def as_rgb_uint8(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    if img.shape[2] == 4:
        img = img[..., :3]
    if img.dtype != np.uint8:
        img = np.clip(np.round(img * 255.0 if img.max() <= 1.0 else img), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img)


def bundled_image(name: str) -> np.ndarray:
    """A scikit-image sample image by name, as H×W×3 uint8 (stereo pairs give the left view)."""
    from skimage import data

    loader = getattr(data, name, None)
    if loader is None:
        raise HarnessError(f"scikit-image has no bundled image '{name}'")
    img = loader()
    if isinstance(img, tuple):  # stereo_motorcycle returns (left, right, disparity)
        img = img[0]
    return as_rgb_uint8(np.asarray(img))


def center_square(img: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square, then resize (area interpolation) to size×size."""
    import cv2

    h, w = img.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = img[top : top + side, left : left + side]
    return cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)


def resize_short_side(img: np.ndarray, short: int) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    scale = short / min(h, w)
    if scale >= 1.0:
        return img
    return cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
