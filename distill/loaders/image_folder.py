"""``data.name: image_folder``: one subfolder of PNG/JPEG images per class."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ground.errors import UserError

from ..data_files import resolve_path
from ..dataset import Dataset
from ..splits import from_splits

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _read_image_folder(
    root: Path, key: str, size: list[int] | None, gray: bool, classes: list[str] | None
) -> tuple[np.ndarray, np.ndarray, list[str], tuple[int, int]]:
    from PIL import Image

    dirs = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if classes is None:
        classes = dirs
        if len(classes) < 2:
            raise UserError(
                f"recipe key '{key}' ('{root}') needs one subfolder per class (at least 2); found {dirs}."
            )
    elif set(dirs) - set(classes):
        raise UserError(
            f"'{root}' has class folders {sorted(set(dirs) - set(classes))} that data.path does not; "
            f"the classes are {classes}."
        )
    xs, ys, hw = [], [], tuple(size) if size else None
    for ci, c in enumerate(classes):
        folder = root / c
        files = (
            sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            if folder.is_dir()
            else []
        )
        for f in files:
            try:
                with Image.open(f) as im:
                    im = im.convert("L" if gray else "RGB")
                    if hw is None:
                        hw = (im.height, im.width)
                    if (im.height, im.width) != hw:
                        if not size:
                            raise UserError(
                                f"'{f}' is {im.height}x{im.width} but the first image is {hw[0]}x{hw[1]}; "
                                "set data.size: [H, W] to resize every image."
                            )
                        im = im.resize((hw[1], hw[0]), Image.BILINEAR)
                    a = np.asarray(im, dtype=np.float32)
            except UserError:
                raise
            except Exception as exc:
                raise UserError(
                    f"'{f}' cannot be read as an image ({type(exc).__name__}: {exc}); remove or replace it."
                ) from exc
            xs.append(a[None] if gray else a.transpose(2, 0, 1))
            ys.append(ci)
    if not xs:
        raise UserError(
            f"'{root}' holds no {'/'.join(IMAGE_SUFFIXES)} images in its class folders."
        )
    x = np.stack(xs).reshape(len(xs), -1)
    return x, np.array(ys, np.int64), classes, hw


def load_image_folder(cfg: dict) -> Dataset:
    """One subfolder per class of PNG/JPEG images; pixels 0..255 as float32, layout [C, H, W].

    ``size: [H, W]`` resizes every image (bilinear); without it all must share the first's size.
    ``grayscale`` reads one channel, otherwise RGB. ``test_path``: a folder of the same classes
    = the holdout. Class names are the folder names in sorted order.
    """
    if not cfg["path"]:
        raise UserError(
            "recipe key 'data.path' is required for data.name: image_folder (a folder with one "
            "subfolder of PNG/JPEG images per class)."
        )
    root = resolve_path(cfg["path"], "data.path")
    gray = bool(cfg["grayscale"])
    x, y, classes, hw = _read_image_folder(root, "data.path", cfg["size"], gray, None)
    flat = {"train": (x, y)}
    source = {"path": str(root), "grayscale": gray, "size": list(hw)}
    if cfg["test_path"]:
        test_root = resolve_path(cfg["test_path"], "data.test_path")
        xt, yt, _, _ = _read_image_folder(test_root, "data.test_path", list(hw), gray, classes)
        flat["test"] = (xt, yt)
        source["test_path"] = str(test_root)
    image_shape = (1 if gray else 3, *hw)
    nominal = np.zeros(x.shape[1], bool)
    return from_splits(root.name, flat, classes, nominal, image_shape, cfg, source)
