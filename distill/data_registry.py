"""Data loaders by name: ``data.name`` -> ``"package.module:function"``, imported on first use.

The registry also holds the recipe's ``data.*`` field tables: the keys every loader shares
(:data:`DATA_FIELDS`) and the extra keys each loader reads (:data:`LOADER_FIELDS`), which
validation and docs/recipe.md read without importing any loader. It imports no loader,
and no loader imports it.

Your own module adds a loader with :func:`register_loader`, by the function itself or by its
dotted path; a recipe then names it as ``data.name: <name>``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from ground.lazy import LazyRegistry
from ground.recipe import Field

if TYPE_CHECKING:
    from .dataset import Dataset

Loader = Callable[[dict], "Dataset"]

LOADERS: LazyRegistry[Loader] = LazyRegistry(
    {
        "digits": "distill.loaders.digits:load_digits_data",
        "mnist": "distill.loaders.mnist:load_mnist",
        "adult": "distill.loaders.adult:load_adult",
        "letter": "distill.loaders.letter:load_letter",
        "npz": "distill.loaders.npz:load_npz",
    }
)
LOADER_FIELDS: dict[str, dict[str, Field]] = {}  # extra data.* keys a registered loader reads


def register_loader(
    name: str, loader: Loader | str, fields: dict[str, Field] | None = None
) -> None:
    """Add a loader under ``data.name: <name>``, with the extra recipe keys it reads.

    ``loader`` is the function, or its dotted path ``"package.module:function"`` (imported
    the first time a recipe names it).
    """
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

TEST_PATH = Field(str, None, doc="the test split (the holdout), same layout as path")
IMAGE_FOLDER_FIELDS: dict[str, Field] = {
    "test_path": TEST_PATH,
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
}

AUDIO_FIELDS: dict[str, Field] = {
    "labels_from": Field(
        str,
        "folder",
        choices=("folder", "pattern"),
        doc="audio_folder: class from the subfolder name, or from {label} in data.pattern",
    ),
    "pattern": Field(
        str,
        None,
        doc="audio_folder: file-name pattern with {label}, {speaker}, {index} fields, "
        "e.g. '{label}_{speaker}_{index}.wav' (FSDD)",
    ),
    "glob": Field(str, "*.wav", doc="audio_folder: only files whose name matches"),
    "holdout_index_max": Field(
        int,
        None,
        min=0,
        doc="audio_folder: takes with {index} <= this are the holdout (FSDD: 4, its official test set)",
    ),
    "holdout_speakers": Field(
        list, None, doc="audio_folder: these {speaker}s form the holdout (leave-speakers-out)"
    ),
    "val_speakers": Field(
        list,
        None,
        doc="audio_folder: these {speaker}s' non-holdout clips are the validation split, and none "
        "of their clips train (selection on a new voice)",
    ),
    "frontend": Field(dict, None, doc="audio_folder: front-end settings (see data.frontend.*)"),
    "augment": Field(
        dict,
        None,
        doc="audio_folder: train on words in noisy 1 s windows with _silence_ and _unknown_ "
        "classes (see data.augment.*; {} for the defaults)",
    ),
    "keywords": Field(
        list, None, doc="audio_folder with augment: the labels that are keywords (default all)"
    ),
    "decision": Field(
        dict, None, doc="audio_folder with augment: the shipped decision rule (data.decision.*)"
    ),
    "cache": Field(
        bool, True, doc="audio_folder: cache features as .npy under build/cache/ (keyed on files)"
    ),
}

CSV_FIELDS: dict[str, Field] = {
    "test_path": TEST_PATH,
    "label": Field(str, None, doc="the label column (its values become the labels)"),
    "categorical": Field(
        (list, str),
        "auto",
        doc="categorical columns, or auto (every column with a non-numeric value)",
    ),
    "impute": Field(
        str,
        "median",
        choices=("median", "most_frequent", "error"),
        doc="what fills a missing value (empty, ?, NA, NaN, null, none): median = a numeric "
        "column's training median and a categorical column's most frequent training value; "
        "most_frequent; error = refuse it, naming the line. The fill values are recorded in the "
        "card and ship/preprocess.json, which the shipped examples apply",
    ),
    "unseen": Field(
        str,
        "most_frequent",
        choices=("most_frequent", "unknown", "error"),
        doc="a category the training file lacks (test file, or your later data): most_frequent "
        "= the column's most frequent training value; unknown = code -1 (all zeros in the "
        "student's one-hot); error = refuse it. Holdout counts are in the card",
    ),
    "encoding": Field(
        str, "utf-8", doc="the file's text encoding, e.g. latin-1 or cp1252 (spreadsheet exports)"
    ),
    "delimiter": Field(
        str, "auto", doc="the field separator; auto: the one of , ; tab | the header line has most"
    ),
    "decimal": Field(
        str, ".", choices=(".", ","), doc="the decimal mark of numbers (',' with delimiter ';')"
    ),
}

register_loader(
    "image_folder", "distill.loaders.image_folder:load_image_folder", IMAGE_FOLDER_FIELDS
)
register_loader("audio_folder", "distill.audio:load_audio_folder", AUDIO_FIELDS)
register_loader("csv", "distill.csv_loader:load_csv", CSV_FIELDS)
