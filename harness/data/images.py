"""Image reading and the clean images bundled with scikit-image (no download needed).

``read_rgb`` reads any 8-bit image as H×W×3 uint8 RGB the way the PromptIR/AirNet loaders do
(PIL ``convert('RGB')``, docs/protocols.md#test-images-loading): grayscale, palette, RGBA and CMYK
images are converted, with an :class:`ImageConversionWarning`; 16-bit and float images are
refused (PIL would clip them to 8 bits silently); a file that cannot be decoded raises
:class:`ImageReadError` naming it.
"""
from __future__ import annotations

import hashlib
import io
import pathlib
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from harness.data.errors import ImageConversionWarning, ImageReadError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

# PIL modes that convert('RGB') handles without losing range; anything else is refused.
CONVERTIBLE_MODES = {
    "L": "grayscale", "LA": "grayscale with alpha", "1": "1-bit", "P": "palette", "PA": "palette with alpha",
    "RGBA": "RGBA", "RGBa": "RGBA", "RGBX": "RGBX", "CMYK": "CMYK", "YCbCr": "YCbCr", "LAB": "Lab",
}


def is_image_file(path: pathlib.Path) -> bool:
    """An image by suffix; hidden files (``.DS_Store``, macOS ``._x.png`` forks) are skipped."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


@dataclass(frozen=True)
class ImageHeader:
    """What an image's header says, without decoding the pixels."""

    width: int
    height: int
    mode: str

    @property
    def conversion(self) -> str | None:
        """A description of the conversion to RGB, or None when the image is RGB already."""
        return None if self.mode == "RGB" else CONVERTIBLE_MODES.get(self.mode)


def _reason(exc: BaseException) -> str:
    """PIL's complaint without the file object it names (a BytesIO repr is no help)."""
    if isinstance(exc, UnidentifiedImageError):
        return "not an image format PIL can identify (damaged, empty, or not an image)"
    return str(exc) or type(exc).__name__


def _unreadable(path: pathlib.Path, exc: BaseException) -> ImageReadError:
    return ImageReadError(f"cannot read image '{path}': {_reason(exc)}; replace or remove the file")


def _unsupported(path: pathlib.Path, mode: str) -> ImageReadError:
    return ImageReadError(
        f"image '{path}' has PIL mode '{mode}' (16-bit or floating point); the protocol reads 8-bit RGB: "
        "convert the file to 8-bit, e.g. with `convert in.png -depth 8 out.png`"
    )


def read_header(path: str | pathlib.Path) -> ImageHeader:
    """Open the file and read its size and mode only (cheap: no pixel decoding)."""
    path = pathlib.Path(path)
    try:
        with Image.open(path) as img:
            header = ImageHeader(img.width, img.height, img.mode)
    except (OSError, ValueError, SyntaxError) as exc:
        raise _unreadable(path, exc) from None
    if header.mode != "RGB" and header.mode not in CONVERTIBLE_MODES:
        raise _unsupported(path, header.mode)
    return header


def decode_rgb(data: bytes, path: str | pathlib.Path, warn: bool = True) -> np.ndarray:
    """Decode image bytes (read from ``path``, named in messages) as H×W×3 uint8 RGB."""
    path = pathlib.Path(path)
    try:
        with Image.open(io.BytesIO(data)) as img:
            mode = img.mode
            if mode != "RGB" and mode not in CONVERTIBLE_MODES:
                raise _unsupported(path, mode)
            img.load()  # decodes every pixel: truncated files fail here, not later
            rgb = np.asarray(img if mode == "RGB" else img.convert("RGB"), dtype=np.uint8).copy()
    except ImageReadError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise _unreadable(path, exc) from None
    if mode != "RGB" and warn:
        warnings.warn(
            ImageConversionWarning(f"image '{path}' is {CONVERTIBLE_MODES[mode]} ({mode}); converted to RGB"),
            stacklevel=2,
        )
    return rgb


def read_rgb(path: str | pathlib.Path, warn: bool = True) -> np.ndarray:
    """Read an image file as H×W×3 uint8 RGB (grayscale, palette and RGBA are converted, with a warning)."""
    return read_rgb_hashed(path, warn=warn)[0]


def read_rgb_hashed(path: str | pathlib.Path, warn: bool = True) -> tuple[np.ndarray, str]:
    """``read_rgb`` plus the sha256 of the file's bytes (for the run's manifest), reading the file once."""
    path = pathlib.Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageReadError(f"cannot read image '{path}': {exc.strerror or exc}; check the file") from None
    return decode_rgb(data, path, warn=warn), hashlib.sha256(data).hexdigest()


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

    from harness.errors import HarnessError

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
