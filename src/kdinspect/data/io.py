"""Safe decoding of images, masks and soft labels.

Every loader raises :class:`ImageReadError` naming the file and the reason (missing, truncated, undecodable), so that
datasets can skip the file with a clear log line and ``data check`` can report it. Truncated JPEGs are detected because
the pixel data is fully decoded (``Image.load()``) and ``ImageFile.LOAD_TRUNCATED_IMAGES`` is never set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = [
    "IMAGE_EXTENSIONS",
    "MASK_FORMATS",
    "MASK_THRESHOLD",
    "ImageReadError",
    "decode_crackforest_seg",
    "load_crackforest_labels",
    "load_image",
    "load_mask",
    "load_mask_checked",
    "load_soft_label",
    "mask_values_note",
    "read_image_size",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
MASK_FORMATS = ("png", "crackforest-mat", "crackforest-seg")
MASK_THRESHOLD = 127  # image masks with values other than {0, 1} are defect where the grey value is above this


class ImageReadError(OSError):
    """An image, mask or label file could not be read.

    Attributes:
        path: the file.
        reason: what went wrong (``file not found``, ``truncated or corrupt``, ...).
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read {self.path}: {reason}")


def _open_decoded(path: Path) -> Image.Image:
    """Open and fully decode ``path`` with Pillow, turning every failure into :class:`ImageReadError`."""
    if not path.is_file():
        raise ImageReadError(path, "file not found")
    try:
        img = Image.open(path)
        img.load()  # decode all pixel data: truncated files fail here
    except UnidentifiedImageError as err:
        raise ImageReadError(path, "not a recognised image format") from err
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ImageReadError(path, f"truncated or corrupt ({err})") from err
    return img


def load_image(path: str | Path) -> np.ndarray:
    """Decode an image file to RGB.

    Args:
        path: image file (any format Pillow reads; grayscale, palette and RGBA images are converted).

    Returns:
        (H, W, 3) uint8 RGB array.

    Raises:
        ImageReadError: the file is missing, truncated or undecodable.
    """
    path = Path(path)
    img = _open_decoded(path)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.array(img)  # writable copy (torch.from_numpy needs one)


def read_image_size(path: str | Path) -> tuple[int, int]:
    """Read (H, W) from the file header without decoding pixels.

    Raises:
        ImageReadError: the file is missing or its header is unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(path, "file not found")
    try:
        with Image.open(path) as img:
            w, h = img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ImageReadError(path, f"unreadable image header ({err})") from err
    return h, w


def decode_crackforest_seg(path: str | Path) -> np.ndarray:
    """Decode a BSDS ``.seg`` file (ASCII runs ``segment row col_start col_end``, 0-based, inclusive).

    Returns:
        (H, W) uint8 segment map, equal to the matching ``.mat`` ``Segmentation`` minus 1.

    Raises:
        ImageReadError: missing file or malformed header/runs.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(path, "file not found")
    try:
        lines = path.read_text(errors="replace").splitlines()
        header: dict[str, str] = {}
        start = None
        for i, line in enumerate(lines):
            if line.strip() == "data":
                start = i + 1
                break
            key, _, value = line.partition(" ")
            header[key] = value.strip()
        if start is None or "width" not in header or "height" not in header:
            raise ValueError("header lacks 'width', 'height' or the 'data' line")
        h, w = int(header["height"]), int(header["width"])
        runs = np.loadtxt(lines[start:], dtype=np.int64, ndmin=2) if start < len(lines) else np.zeros((0, 4), int)
        if runs.shape[1] != 4:
            raise ValueError(f"runs have {runs.shape[1]} columns, expected 4")
        seg = np.zeros((h, w), dtype=np.uint8)
        for s, r, c0, c1 in runs:
            if not (0 <= r < h and 0 <= c0 <= c1 < w):
                raise ValueError(f"run ({s}, {r}, {c0}, {c1}) outside the {w}x{h} frame")
            seg[r, c0 : c1 + 1] = s
    except ImageReadError:
        raise
    except (ValueError, IndexError) as err:
        raise ImageReadError(path, f"malformed .seg file ({err})") from err
    return seg


def load_crackforest_labels(path: str | Path, mask_format: str) -> np.ndarray:
    """Region labels of a CrackForest annotation, in the ``.mat`` convention (1 = background, 2 = crack, 3/4 = extra).

    Args:
        path: ``groundTruth/NNN.mat`` or ``seg/NNN.seg``.
        mask_format: ``crackforest-mat`` or ``crackforest-seg``.

    Returns:
        (H, W) uint8 label map.
    """
    path = Path(path)
    if mask_format == "crackforest-seg":
        return decode_crackforest_seg(path) + 1
    if mask_format != "crackforest-mat":
        raise ValueError(f"mask_format {mask_format!r} is not a CrackForest format; valid: {list(MASK_FORMATS[1:])}")
    if not path.is_file():
        raise ImageReadError(path, "file not found")
    import scipy.io  # local import: only CrackForest needs scipy

    try:
        seg = scipy.io.loadmat(str(path))["groundTruth"][0, 0]["Segmentation"]
    except (OSError, ValueError, KeyError, IndexError, TypeError, NotImplementedError) as err:
        raise ImageReadError(path, f"not a CrackForest groundTruth .mat file ({err!r})") from err
    return np.asarray(seg, dtype=np.uint8)


def _values_text(values: np.ndarray) -> str:
    shown = [str(int(v)) for v in values[:6]]
    return "{" + ", ".join(shown) + (f", ... ({len(values)} values)" if len(values) > 6 else "") + "}"


def _png_mask(path: Path) -> tuple[np.ndarray, tuple[str, str] | None]:
    """Binary mask of a PNG-like mask file and, when its values are not {0, 255} (or mode ``1``), a note
    ``(what the values are, what the reader does)``."""
    img = _open_decoded(path)
    if img.mode == "1":
        return np.asarray(img, dtype=np.uint8), None
    grey = np.asarray(img.convert("L"))
    uniq = np.unique(grey)
    mode = "" if img.mode == "L" else f" (mode {img.mode}, read as grey)"
    if uniq.max(initial=0) <= 1:  # a 0/1 mask: thresholding at 127 would make it all background
        mask = grey.astype(np.uint8)
        if uniq.max(initial=0) == 0:
            return mask, None
        return mask, (f"mask values are {_values_text(uniq)}{mode}, not {{0, 255}}", "read as 1 = defect")
    mask = (grey > MASK_THRESHOLD).astype(np.uint8)
    if set(uniq.tolist()) <= {0, 255}:
        return mask, None
    odd = int(((grey != 0) & (grey != 255)).sum())
    what = (
        f"mask values are {_values_text(uniq)}{mode}, not {{0, 255}}: {odd} pixels "
        f"({100 * odd / grey.size:.1f}%) are neither 0 nor 255"
    )
    return mask, (what, f"thresholded at > {MASK_THRESHOLD}: {int(mask.sum())} defect pixels")


def load_mask_checked(
    path: str | Path, mask_format: str = "png", extra_labels: str = "background"
) -> tuple[np.ndarray, tuple[str, str] | None]:
    """:func:`load_mask` plus, for image masks whose values are not {0, 255} (or mode ``1``), a note
    ``(what the values are, what the reader does)`` for ``data check``; None for clean masks and CrackForest files."""
    if mask_format == "png":
        return _png_mask(Path(path))
    if mask_format not in MASK_FORMATS:
        raise ValueError(f"unknown mask_format {mask_format!r}; valid: {list(MASK_FORMATS)}")
    if extra_labels not in ("background", "crack"):
        raise ValueError(f"extra_labels must be 'background' or 'crack', got {extra_labels!r}")
    labels = load_crackforest_labels(path, mask_format)
    crack = labels == 2
    if extra_labels == "crack":
        crack |= labels >= 3
    return crack.astype(np.uint8), None


def load_mask(path: str | Path, mask_format: str = "png", extra_labels: str = "background") -> np.ndarray:
    """Decode a binary defect mask.

    Args:
        path: mask file.
        mask_format: ``png`` (any image file Pillow reads; mode ``1`` is used as is; other modes are converted to
            ``L``; a mask whose values are all in {0, 1} is read as 1 = defect, any other is thresholded at
            ``> 127``, so 0/255 masks read as expected and grey or soft masks are binarised; ``data check`` reports
            masks whose values are not {0, 255}), ``crackforest-mat`` or ``crackforest-seg`` (label 2 = crack).
        extra_labels: CrackForest only: how to treat the inconsistent labels 3/4 (``background`` or ``crack``).

    Returns:
        (H, W) uint8 array in {0, 1} (1 = defect).

    Raises:
        ImageReadError: missing, truncated or undecodable file.
        ValueError: unknown ``mask_format`` or ``extra_labels``.
    """
    return load_mask_checked(path, mask_format, extra_labels)[0]


def mask_values_note(path: str | Path) -> tuple[str, str] | None:
    """The note of :func:`load_mask_checked` for an image mask (None: values {0, 255} or mode ``1``, or all 0)."""
    return _png_mask(Path(path))[1]


def load_soft_label(paths: str | Path | list[str] | list[Path]) -> np.ndarray:
    """Load offline soft labels (teacher probability maps).

    Args:
        paths: one file or a list of files, stacked as channels. A PNG gives one channel per band, ``p = value / 255``
            (``L``: 1, ``LA``: 2, ``RGB``: 3, ``RGBA``: 4, as ``kdinspect.distill.soft_labels`` writes them; 16-bit
            PNGs use / 65535); a ``.npy`` holds float (H, W) or (C, H, W) probabilities.

    Returns:
        (C, H, W) float32 array.
    """
    items: list[Path] = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    channels: list[np.ndarray] = []
    for path in items:
        if path.suffix.lower() == ".npy":
            if not path.is_file():
                raise ImageReadError(path, "file not found")
            try:
                arr = np.load(path, allow_pickle=False).astype(np.float32)
            except (OSError, ValueError) as err:
                raise ImageReadError(path, f"unreadable .npy ({err})") from err
            if arr.ndim not in (2, 3):
                raise ImageReadError(path, f"soft label must be (H, W) or (C, H, W), got shape {arr.shape}")
            channels.extend(arr[None] if arr.ndim == 2 else arr)
        else:
            img = _open_decoded(path)
            if img.mode in ("I;16", "I;16B", "I"):
                channels.append(np.asarray(img, dtype=np.float32) / 65535.0)
                continue
            if img.mode not in ("L", "LA", "RGB", "RGBA"):
                img = img.convert("L")
            arr = np.asarray(img, dtype=np.float32) / 255.0
            channels.extend(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
    shapes = {c.shape for c in channels}
    if len(shapes) != 1:
        raise ImageReadError(items[0], f"soft-label channels differ in size: {sorted(shapes)}")
    return np.stack(channels, axis=0)
