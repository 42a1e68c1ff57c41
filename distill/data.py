"""Data sets for distillation, looked up by name, split deterministically.

Every loader returns raw features ``x_raw`` (float32 ``[n, d]``; nominal attributes
label-encoded as integer codes, marked in ``nominal``) and three splits: train (the
teacher is fitted on it and the transfer set grows from it), validation (ensemble
selection and early stopping) and holdout (the test set the card's metrics come from;
nothing is ever tuned on it). Normalization is fitted on the training split only.

Loaders are registered by name (:func:`register_loader`), each with the recipe keys it
adds; another module registers its own the same way (``distill/audio.py``). Relative paths
in a recipe are resolved against the recipe file's folder before a loader sees them.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ground.errors import UserError
from ground.recipe import Field, validate

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Dataset:
    """Raw splits plus what the card needs to describe the input."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_holdout: np.ndarray
    y_holdout: np.ndarray
    labels: list[str]
    nominal: np.ndarray  # bool [d]
    image_shape: tuple[int, ...] | None  # [C, H, W] when rows are images, else None
    source: dict = field(default_factory=dict)
    columns: list[str] | None = None  # feature names, when the file has them (CSV header)
    categories: dict[int, list[str]] = field(default_factory=dict)  # nominal column -> code order

    def input_encoding(self) -> dict:
        """How a raw row is laid out: per nominal column the value each integer code stands for."""
        cols = self.columns or [str(i) for i in range(self.n_features)]
        return {
            "columns": cols if self.image_shape is None else None,
            "nominal": {
                cols[j]: (self.categories.get(j) or "integer codes")
                for j in np.flatnonzero(self.nominal)
            },
        }

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])


@dataclass
class Normalizer:
    """x_model = (x_raw - mean) / std, fitted on the training split (scalar or per column)."""

    mean: np.ndarray | float
    std: np.ndarray | float
    mode: str

    @classmethod
    def fit(cls, x: np.ndarray, mode: str) -> Normalizer:
        if mode == "none":
            return cls(0.0, 1.0, mode)
        if mode == "scalar":
            std = float(x.std())
            return cls(float(x.mean()), std if std > 0 else 1.0, mode)
        mean = x.mean(axis=0).astype(np.float32)
        std = x.std(axis=0).astype(np.float32)
        # A constant column (up to float rounding: std ~1e-22 on padded silence) keeps std 1, or
        # a row that differs there would be scaled by 1e22.
        std[std <= 1e-6 * np.maximum(1.0, np.abs(mean))] = 1.0
        return cls(mean, std, mode)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)

    def inverse(self, x: np.ndarray) -> np.ndarray:
        """x_raw from x_model (e.g. rows jittered in model-ready space)."""
        return (np.asarray(x) * self.std + self.mean).astype(np.float32)

    def card(self) -> dict:
        as_json = (
            (lambda v: float(v)) if self.mode != "column" else (lambda v: [float(a) for a in v])
        )
        return {
            "mean": as_json(self.mean),
            "std": as_json(self.std),
            "mode": self.mode,
            "note": "x_model = (x_raw - mean) / std"
            + (", per feature column" if self.mode == "column" else ""),
        }


# ---- helpers -----------------------------------------------------------------------------


def resolve_path(path: str | Path, key: str, base_dir: str | Path | None = None) -> Path:
    """A recipe path: absolute, or relative to ``base_dir`` (the recipe's folder); missing -> UserError.

    ``load_data`` has already made the recipe's own paths absolute; a loader's built-in default
    (e.g. MNIST's ``../shared/data/mnist``) is relative to the repository root.
    """
    base = Path(base_dir) if base_dir is not None else REPO_ROOT
    p = Path(path)
    if not p.is_absolute():
        p = base / p
    if not p.exists():
        raise UserError(
            f"recipe key '{key}' points to '{path}', which does not exist (looked at '{p}'). "
            f"Give a path relative to the recipe file's folder ({base}) or an absolute path."
        )
    return p


def check_finite(x: np.ndarray, what: str) -> None:
    """NaN or inf in the features is the user's data problem: name the count and the first place."""
    bad = ~np.isfinite(x)
    if bad.any():
        first = np.argwhere(bad)[0]
        raise UserError(
            f"{what} has {int(bad.sum())} NaN/inf values (first at row {int(first[0])}"
            + (f", column {int(first[1])}" if len(first) > 1 else "")
            + "). Impute or drop those rows before distilling."
        )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _verify(path: Path, expected: str, verify: bool) -> None:
    if verify and _sha256(path) != expected:
        raise UserError(
            f"'{path}' does not have the sha256 its README pins ({expected}); the file is corrupt or "
            f"a different release. Restore the original file, or set data.verify_sha256: false."
        )


MIN_ROWS = 20


def _split(
    n: int, val_fraction: float, holdout_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic permutation split into train / validation / holdout indices."""
    if n < MIN_ROWS:
        raise UserError(
            f"data set of {n} rows is too small: tinyship needs at least {MIN_ROWS} rows (train, "
            "validation and holdout splits, and cross-validated teacher members). Add rows."
        )
    idx = np.random.default_rng(seed).permutation(n)
    n_ho = int(round(n * holdout_fraction))
    n_val = int(round(n * val_fraction))
    if n - n_ho - n_val < 2 or n_val < 1 or n_ho < 1:
        raise UserError(
            f"data set of {n} rows is too small for data.val_fraction={val_fraction} and "
            f"data.holdout_fraction={holdout_fraction}; each split needs rows."
        )
    return idx[n_ho + n_val :], idx[n_ho : n_ho + n_val], idx[:n_ho]


def _from_pool(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    labels: list[str],
    nominal: np.ndarray,
    image_shape,
    cfg: dict,
    source: dict,
) -> Dataset:
    tr, va, ho = _split(len(x), cfg["val_fraction"], cfg["holdout_fraction"], cfg["split_seed"])
    return _limit(
        Dataset(
            name, x[tr], y[tr], x[va], y[va], x[ho], y[ho], labels, nominal, image_shape, source
        ),
        cfg,
    )


def _from_train_test(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    labels: list[str],
    nominal: np.ndarray,
    image_shape,
    cfg: dict,
    source: dict,
) -> Dataset:
    """Official test set = holdout; the validation split is carved from the official training set."""
    idx = np.random.default_rng(cfg["split_seed"]).permutation(len(x))
    n_val = max(1, int(round(len(x) * cfg["val_fraction"])))
    va, tr = idx[:n_val], idx[n_val:]
    return _limit(
        Dataset(
            name, x[tr], y[tr], x[va], y[va], x_test, y_test, labels, nominal, image_shape, source
        ),
        cfg,
    )


def _limit(ds: Dataset, cfg: dict) -> Dataset:
    """Cap split sizes (first rows of the already shuffled splits) to keep runs small."""
    for split, key in (("train", "max_train"), ("val", "max_val"), ("holdout", "max_holdout")):
        cap = cfg[key]
        if cap is not None:
            setattr(ds, f"x_{split}", getattr(ds, f"x_{split}")[:cap])
            setattr(ds, f"y_{split}", getattr(ds, f"y_{split}")[:cap])
    return ds


# ---- loaders (registry) -----------------------------------------------------------------


def load_digits_data(cfg: dict) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images, values 0..16)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.data.astype(np.float32)
    y = d.target.astype(np.int64)
    return _from_pool(
        "digits",
        x,
        y,
        [str(i) for i in range(10)],
        np.zeros(64, bool),
        (1, 8, 8),
        cfg,
        {"loader": "sklearn.datasets.load_digits"},
    )


_MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise UserError(
            f"'{path}' is not an idx file of unsigned bytes; restore the original MNIST file."
        )
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist(cfg: dict) -> Dataset:
    """MNIST from its four idx.gz files (sha256 checked); the official test set is the holdout."""
    root = resolve_path(cfg["path"] or "../shared/data/mnist", "data.path")
    arrays = {}
    for fname, sha in _MNIST_SHA256.items():
        p = root / fname
        if not p.is_file():
            raise UserError(
                f"MNIST file '{p}' is missing. data.path must be the folder holding the four idx.gz files "
                f"({', '.join(_MNIST_SHA256)})."
            )
        _verify(p, sha, cfg["verify_sha256"])
        arrays[fname] = _read_idx(p)
    x = arrays["train-images-idx3-ubyte.gz"].reshape(-1, 784).astype(np.float32)
    y = arrays["train-labels-idx1-ubyte.gz"].astype(np.int64)
    xt = arrays["t10k-images-idx3-ubyte.gz"].reshape(-1, 784).astype(np.float32)
    yt = arrays["t10k-labels-idx1-ubyte.gz"].astype(np.int64)
    return _from_train_test(
        "mnist",
        x,
        y,
        xt,
        yt,
        [str(i) for i in range(10)],
        np.zeros(784, bool),
        (1, 28, 28),
        cfg,
        {"path": str(root), "sha256_verified": cfg["verify_sha256"]},
    )


_ADULT_COLUMNS = [
    ("age", False),
    ("workclass", True),
    ("fnlwgt", False),
    ("education", True),
    ("education-num", False),
    ("marital-status", True),
    ("occupation", True),
    ("relationship", True),
    ("race", True),
    ("sex", True),
    ("capital-gain", False),
    ("capital-loss", False),
    ("hours-per-week", False),
    ("native-country", True),
]
_ADULT_SHA256 = {
    "adult.data": "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d",
    "adult.test": "a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05",
}


def _adult_rows(path: Path) -> list[list[str]]:
    rows = []
    for line in path.read_text().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 15:  # blank lines and the test file's '|1x3 Cross validator' header
            continue
        parts[14] = parts[14].rstrip(".")  # the test file's labels end in a dot
        rows.append(parts)
    return rows


def load_adult(cfg: dict) -> Dataset:
    """UCI Adult: 6 continuous + 8 nominal attributes; '?' is its own nominal code, labels <=50K / >50K."""
    root = resolve_path(cfg["path"] or "../shared/data/uci_adult", "data.path")
    files = {}
    for fname, sha in _ADULT_SHA256.items():
        p = root / fname
        if not p.is_file():
            raise UserError(
                f"UCI Adult file '{p}' is missing. data.path must be the folder holding adult.data and adult.test."
            )
        _verify(p, sha, cfg["verify_sha256"])
        files[fname] = _adult_rows(p)
    train, test = files["adult.data"], files["adult.test"]
    nominal = np.array([nom for _, nom in _ADULT_COLUMNS])
    vocab = [
        sorted({r[j] for r in train} | {"?"}) if nom else None
        for j, (_, nom) in enumerate(_ADULT_COLUMNS)
    ]

    def encode(rows: list[list[str]]) -> np.ndarray:
        x = np.zeros((len(rows), 14), np.float32)
        for j, (_, nom) in enumerate(_ADULT_COLUMNS):
            if nom:
                codes = {v: i for i, v in enumerate(vocab[j])}
                x[:, j] = [
                    codes.get(r[j], codes["?"]) for r in rows
                ]  # a value unseen in training counts as missing
            else:
                col = [r[j] for r in rows]
                x[:, j] = [float(v) if v != "?" else np.nan for v in col]
        return x

    x, xt = encode(train), encode(test)
    for j, (_, nom) in enumerate(
        _ADULT_COLUMNS
    ):  # continuous '?' (none in the release) -> training median
        if not nom:
            med = np.nanmedian(x[:, j])
            x[np.isnan(x[:, j]), j] = med
            xt[np.isnan(xt[:, j]), j] = med
    labels = ["<=50K", ">50K"]
    y = np.array([labels.index(r[14]) for r in train], np.int64)
    yt = np.array([labels.index(r[14]) for r in test], np.int64)
    return _from_train_test(
        "adult",
        x,
        y,
        xt,
        yt,
        labels,
        nominal,
        None,
        cfg,
        {
            "path": str(root),
            "columns": [c for c, _ in _ADULT_COLUMNS],
            "sha256_verified": cfg["verify_sha256"],
        },
    )


_LETTER_SHA256 = "2b89f3602cf768d3c8355267d2f13f2417809e101fc2b5ceee10db19a60de6e2"


def load_letter(cfg: dict) -> Dataset:
    """UCI Letter: 26 classes, or Bucilua 2006's binary tasks p1 ('O' vs rest) and p2 (A-M vs N-Z)."""
    root = resolve_path(cfg["path"] or "../shared/data/uci_letter", "data.path")
    p = root / "letter-recognition.data" if root.is_dir() else root
    if not p.is_file():
        raise UserError(
            f"UCI Letter file '{p}' is missing. data.path must be the folder holding letter-recognition.data."
        )
    _verify(p, _LETTER_SHA256, cfg["verify_sha256"])
    rows = [line.split(",") for line in p.read_text().splitlines() if line.strip()]
    letters = np.array([r[0] for r in rows])
    x = np.array([[float(v) for v in r[1:]] for r in rows], np.float32)
    task = cfg["task"] or "letters"
    if task == "letters":
        labels = [chr(ord("A") + i) for i in range(26)]
        y = np.array([ord(c) - ord("A") for c in letters], np.int64)
    elif task == "p1":
        labels, y = ["not-O", "O"], (letters == "O").astype(np.int64)
    elif task == "p2":
        labels, y = ["A-M", "N-Z"], (letters >= "N").astype(np.int64)
    else:
        raise UserError(
            f"recipe key 'data.task' for letter must be one of 'letters', 'p1', 'p2'; got {task!r}."
        )
    return _from_pool(
        f"letter-{task}",
        x,
        y,
        labels,
        np.zeros(16, bool),
        None,
        cfg,
        {"path": str(p), "task": task, "sha256_verified": cfg["verify_sha256"]},
    )


def _read_npz(p: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as exc:
        raise UserError(
            f"'{p}' cannot be read as an .npz without pickles ({exc}). Save it with numpy.savez."
        ) from exc


MAX_CLASSES = 10_000  # labels are indices; a stray 2**62 must not allocate or loop


def _npz_pair(arrays: dict, xk: str, yk: str, p: Path) -> tuple[np.ndarray, np.ndarray]:
    x, y = arrays[xk], arrays[yk]
    if x.ndim < 2 or x.ndim > 4 or len(x) != len(y) or y.ndim != 1:
        raise UserError(
            f"'{p}': {xk} must be [n, d], [n, H, W] or [n, C, H, W] and {yk} [n] with the same n; "
            f"got {xk} {list(x.shape)} and {yk} {list(y.shape)}."
        )
    if not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
        raise UserError(
            f"'{p}': {yk} must hold class indices 0..C-1 as integers; got dtype {y.dtype}"
            + (f" with minimum {y.min()}" if len(y) and np.issubdtype(y.dtype, np.number) else "")
            + "."
        )
    if len(y) == 0:
        raise UserError(f"'{p}': {yk} holds 0 rows; a data set needs rows.")
    if int(y.max()) >= MAX_CLASSES:
        raise UserError(
            f"'{p}': {yk} holds the label {int(y.max())}; labels are class indices 0..C-1 with "
            f"C at most {MAX_CLASSES}. Re-encode the labels as 0..C-1."
        )
    return x, y.astype(np.int64)


_NPZ_SPLITS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


def load_npz(cfg: dict) -> Dataset:
    """A user's .npz: ``x`` and ``y`` (split here), or ``x_train``/``y_train`` with optional
    ``x_val``/``y_val`` and ``x_test``/``y_test``.

    x is ``[n, d]``, ``[n, H, W]`` or ``[n, C, H, W]``; y integer class indices. A given test
    split is the holdout (never trained or selected on); a given validation split is used for
    ensemble selection and early stopping. Optional: ``labels`` (class names, in index order)
    and ``nominal`` (bool per feature).
    """
    if not cfg["path"]:
        raise UserError(
            "recipe key 'data.path' is required for data.name: npz (an .npz file with arrays x and y, "
            "or x_train, y_train and optionally x_val, y_val, x_test, y_test)."
        )
    p = resolve_path(cfg["path"], "data.path")
    arrays = _read_npz(p)
    split_keys = [k for k in _NPZ_SPLITS if k in arrays]
    if split_keys and ("x" in arrays or "y" in arrays):
        raise UserError(
            f"'{p}' holds both x/y and {split_keys}; keep either x and y (split by data.val_fraction "
            "and data.holdout_fraction) or x_train, y_train [x_val, y_val] [x_test, y_test]."
        )
    for a, b in (("x_train", "y_train"), ("x_val", "y_val"), ("x_test", "y_test")):
        if (a in arrays) != (b in arrays):
            raise UserError(f"'{p}' has '{a if a in arrays else b}' without its pair; add both.")
    if split_keys and "x_train" not in arrays:
        raise UserError(f"'{p}' has {split_keys} but no x_train and y_train; add them.")
    if not split_keys and ("x" not in arrays or "y" not in arrays):
        raise UserError(
            f"'{p}' must hold arrays 'x' and 'y', or 'x_train' and 'y_train'; it has {sorted(arrays)}."
        )
    parts = {
        s: _npz_pair(arrays, f"x_{s}", f"y_{s}", p)
        for s in (("train", "val", "test") if split_keys else ())
        if f"x_{s}" in arrays
    } or {"pool": _npz_pair(arrays, "x", "y", p)}
    shapes = {s: x.shape[1:] for s, (x, _) in parts.items()}
    if len(set(shapes.values())) > 1:
        raise UserError(f"'{p}': the splits' per-row shapes differ: {shapes}; they must match.")
    x0 = next(iter(parts.values()))[0]
    image_shape = (
        None if x0.ndim == 2 else ((1, *x0.shape[1:]) if x0.ndim == 3 else tuple(x0.shape[1:]))
    )
    flat = {}
    for s, (x, y) in parts.items():
        x = x.reshape(len(x), -1).astype(np.float32)
        check_finite(x, f"'{p}' array {'x' if s == 'pool' else 'x_' + s}")
        flat[s] = (x, y)
    d = next(iter(flat.values()))[0].shape[1]
    n_classes = max(int(y.max()) for _, y in flat.values() if len(y)) + 1
    labels = (
        [str(v) for v in arrays["labels"].tolist()]
        if "labels" in arrays
        else [str(i) for i in range(n_classes)]
    )
    if len(labels) < n_classes:
        raise UserError(
            f"'{p}': 'labels' names {len(labels)} classes but y holds class indices up to "
            f"{n_classes - 1}; give one name per class, in index order."
        )
    nominal = arrays["nominal"].astype(bool) if "nominal" in arrays else np.zeros(d, bool)
    if nominal.shape != (d,):
        raise UserError(
            f"'{p}': nominal must be a bool array of length {d} (one per feature); "
            f"got shape {list(nominal.shape)}."
        )
    source = {"path": str(p), "arrays": sorted(arrays)}
    if "pool" in flat:
        x, y = flat["pool"]
        return _from_pool(p.stem, x, y, labels, nominal, image_shape, cfg, source)
    return _from_splits(p.stem, flat, labels, nominal, image_shape, cfg, source)


def _from_splits(
    name: str,
    flat: dict[str, tuple[np.ndarray, np.ndarray]],
    labels: list[str],
    nominal: np.ndarray,
    image_shape,
    cfg: dict,
    source: dict,
    **extra,
) -> Dataset:
    """Given train [val] [test] splits: missing ones are carved from train, given ones kept."""
    x, y = flat["train"]
    if "test" in flat and "val" in flat:
        ds = Dataset(name, x, y, *flat["val"], *flat["test"], labels, nominal, image_shape, source)
        return _limit(_with(ds, extra), cfg)
    if "test" in flat:
        ds = _from_train_test(name, x, y, *flat["test"], labels, nominal, image_shape, cfg, source)
        return _with(ds, extra)
    idx = np.random.default_rng(cfg["split_seed"]).permutation(len(x))
    if "val" in flat:  # only the holdout is carved from train
        n_ho = int(round(len(x) * cfg["holdout_fraction"]))
        if n_ho < 1 or len(x) - n_ho < 2:
            raise UserError(
                f"training split of {len(x)} rows is too small for data.holdout_fraction="
                f"{cfg['holdout_fraction']}; add a test split."
            )
        ho, tr = idx[:n_ho], idx[n_ho:]
        ds = Dataset(
            name, x[tr], y[tr], *flat["val"], x[ho], y[ho], labels, nominal, image_shape, source
        )
        return _limit(_with(ds, extra), cfg)
    return _with(_from_pool(name, x, y, labels, nominal, image_shape, cfg, source), extra)


def _with(ds: Dataset, extra: dict) -> Dataset:
    for k, v in extra.items():
        setattr(ds, k, v)
    return ds


# ---- CSV ----------------------------------------------------------------------------------

# ---- image folders ------------------------------------------------------------------------

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
    return _from_splits(root.name, flat, classes, nominal, image_shape, cfg, source)


# ---- the registry -----------------------------------------------------------------------

LOADERS: dict[str, Callable[[dict], Dataset]] = {
    "digits": load_digits_data,
    "mnist": load_mnist,
    "adult": load_adult,
    "letter": load_letter,
    "npz": load_npz,
}
LOADER_FIELDS: dict[str, dict[str, Field]] = {}  # extra data.* keys a registered loader reads
PATH_KEYS = ("path", "test_path")  # resolved against the recipe's folder before a loader runs


def register_loader(
    name: str, loader: Callable[[dict], Dataset], fields: dict[str, Field] | None = None
) -> None:
    """Add a loader under ``data.name: <name>``, with the extra recipe keys it reads."""
    LOADERS[name] = loader
    LOADER_FIELDS[name] = dict(fields or {})
    DATA_FIELDS["name"] = dataclasses.replace(DATA_FIELDS["name"], choices=tuple(sorted(LOADERS)))


DATA_FIELDS: dict[str, Field] = {
    "name": Field(str, choices=tuple(sorted(LOADERS)), doc="which data set"),
    "path": Field(
        str, None, doc="file or folder, relative to the recipe file's folder or absolute"
    ),
    "task": Field(str, None, doc="letter: letters | p1 | p2"),
    "val_fraction": Field(
        float,
        0.15,
        min=0.01,
        max=0.5,
        doc="share of the training data held back for ensemble selection and early stopping",
    ),
    "holdout_fraction": Field(
        float, 0.2, min=0.01, max=0.5, doc="ignored where the data set has a test split"
    ),
    "split_seed": Field(int, 0, min=0, doc="seed of the train/validation/holdout split"),
    "max_train": Field(
        int, None, min=10, doc="cap on training rows (e.g. the paper's 4,000); default: all"
    ),
    "max_val": Field(int, None, min=10, doc="cap on validation rows; default: all"),
    "max_holdout": Field(int, None, min=10, doc="cap on holdout rows; default: all"),
    "normalize": Field(
        str,
        "column",
        choices=("column", "scalar", "none"),
        doc="column: per-feature mean/std; scalar: one mean/std over all values (images); none. "
        "Applied inside the student's graph: shipped models take features as in the data file",
    ),
    "verify_sha256": Field(
        bool, True, doc="check data files against the checksums in ../shared/data"
    ),
}

_TEST_PATH = Field(str, None, doc="the test split (the holdout), same layout as path")
register_loader(
    "image_folder",
    load_image_folder,
    {
        "test_path": _TEST_PATH,
        "size": Field(
            list,
            None,
            check=lambda v: (
                None
                if len(v) == 2 and all(isinstance(i, int) and i > 0 for i in v)
                else "must be [H, W], two positive ints"
            ),
            doc="resize every image to [H, W]; default: all share one size",
        ),
        "grayscale": Field(bool, False, doc="one channel instead of RGB"),
    },
)


def validate_section(section: dict | None) -> dict:
    """The recipe's data section with defaults filled in (UserError naming a bad key or value)."""
    name = section.get("name") if isinstance(section, dict) else None
    return validate("data", section, {**DATA_FIELDS, **LOADER_FIELDS.get(name, {})})


def load_data(section: dict, base_dir: str | Path | None = None) -> Dataset:
    """Validate the recipe's data section and load the named data set, checked for NaN/inf.

    ``base_dir``: the folder relative paths are resolved against (the recipe file's folder;
    default the current working directory).
    """
    cfg = validate_section(section)
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    for key in PATH_KEYS:
        if cfg.get(key):
            cfg[key] = str(resolve_path(cfg[key], f"data.{key}", base).resolve())
    ds = LOADERS[cfg["name"]](cfg)
    for split in ("train", "val", "holdout"):
        check_finite(getattr(ds, f"x_{split}"), f"data '{ds.name}' {split} split")
    top = max((int(y.max()) for y in (ds.y_train, ds.y_val, ds.y_holdout) if len(y)), default=-1)
    if ds.num_classes > MAX_CLASSES:  # every loader, not only npz: a class per row is a mistake
        raise UserError(
            f"data '{ds.name}' has {ds.num_classes} classes; at most {MAX_CLASSES} are supported. "
            "Check that data.label names the label column (not an ID or a continuous value)."
        )
    if ds.num_classes < 2 or top >= ds.num_classes:
        raise UserError(
            f"data '{ds.name}' must have at least 2 classes with labels 0..C-1; got labels up to "
            f"{top} for {ds.num_classes} names."
        )
    unseen = sorted(set(np.unique(ds.y_holdout).tolist()) - set(np.unique(ds.y_train).tolist()))
    if unseen:
        names = [ds.labels[i] for i in unseen[:5]]
        raise UserError(
            f"data '{ds.name}': the holdout split has labels {names} that the training split never "
            "has, so no model can learn them. Add training rows of those classes, or change "
            "data.split_seed / data.holdout_fraction."
        )
    return ds


from . import audio as _audio  # noqa: E402,F401  (registers data.name: audio_folder)
from . import csv_loader as _csv  # noqa: E402,F401  (registers data.name: csv)
