"""Teachers: the cumbersome model that labels the transfer set.

A teacher is an ensemble of members (Bucilua et al. 2006 §2 compress an ensemble
built by ensemble selection; Hinton et al. 2015 §2 average an ensemble's
predictions). Each member maps model-ready float32 inputs ``[n, d]`` to class
probabilities ``[n, C]``; the members can come from any framework:

- ``sklearn``: an estimator with ``predict_proba`` handed in through the Python API
  (:class:`SklearnMember`);
- ``sklearn-pickle``: a pickled estimator read from a file, only with an explicit
  trust flag (a pickle runs arbitrary code when loaded);
- ``onnx``: any ONNX file run by onnxruntime (e.g. a random forest converted with
  skl2onnx);
- ``torch``: an in-process ``nn.Module`` (API) or a TorchScript file (recipe);
- ``pt2``: a ``torch.export`` program (``torch.export.load``);
- ``precomputed``: outputs saved next to the inputs they were computed for; they
  can label those rows only.

The ensemble combines members by a (weighted) arithmetic mean of probabilities or
a geometric mean (mean of log-probabilities, renormalized).
"""

from __future__ import annotations

import hashlib
import io
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from tinyship.errors import UserError
from tinyship.recipe import Field, validate

KINDS = ("sklearn", "sklearn-pickle", "onnx", "torch", "pt2", "precomputed")
COMBINES = ("mean", "geometric", "weights")
OUTPUTS = ("probs", "logits")
SUM_TOL = 1e-3  # rows of a member's probabilities must sum to 1 within this
LOG_FLOOR = 1e-12  # probabilities are floored here before a log (geometric mean, nll)


@runtime_checkable
class Member(Protocol):
    """One model of the ensemble."""

    name: str
    kind: str

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Model-ready float32 ``[n, d]`` -> float32 ``[n, C]`` probabilities."""
        ...

    def serialized_bytes(self) -> tuple[int, str]:
        """(bytes, how they were measured): the member's size for the compression ratio."""
        ...


# ---------------------------------------------------------------- helpers


def _sha256_bytes(*chunks: bytes) -> str:
    h = hashlib.sha256()
    for c in chunks:
        h.update(c)
    return h.hexdigest()


def _file_sha256(path: Path) -> str:
    from tinyship.rundir import sha256_file

    return sha256_file(path)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def check_inputs(x: Any, who: str, width: int | None = None) -> np.ndarray:
    """Model-ready inputs must be a finite 2-D float array of the expected width."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise UserError(
            f"{who} expects model-ready inputs of shape [n, d]; got an array of shape {x.shape}. "
            "Flatten images to [n, features] before labelling with the teacher."
        )
    if not np.issubdtype(x.dtype, np.number):
        raise UserError(f"{who} expects numeric inputs; got dtype {x.dtype}.")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))[0]
        raise UserError(
            f"{who} got a NaN or infinite input at row {bad[0]}, column {bad[1]} "
            f"(value {x[bad[0], bad[1]]}). Impute or drop missing values before distilling."
        )
    if width is not None and x.shape[1] != width:
        raise UserError(
            f"{who} expects {width} features per row; got {x.shape[1]}. "
            "Check that the member was trained on the same columns (and encoding) as this dataset."
        )
    return x


def check_probs(p: Any, who: str, n: int, num_classes: int | None) -> np.ndarray:
    """A member's output must be [n, C], finite, rows summing to 1.

    Non-negative outputs whose rows do not sum to 1 (e.g. vote counts) are
    renormalized; negative outputs look like logits and are refused, because
    renormalizing them would silently produce nonsense.
    """
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != n:
        raise UserError(
            f"member '{who}' returned outputs of shape {p.shape}; expected [{n}, num_classes]."
        )
    if num_classes is not None and p.shape[1] != num_classes:
        raise UserError(
            f"member '{who}' returned {p.shape[1]} classes; the data has {num_classes}. "
            "Train the member on all classes (labels 0..C-1) or drop it from the teacher."
        )
    if not np.isfinite(p).all():
        raise UserError(
            f"member '{who}' returned NaN or infinite outputs "
            f"(first at row {int(np.argwhere(~np.isfinite(p))[0][0])}). Check the member model."
        )
    if (p < -1e-6).any():
        raise UserError(
            f"member '{who}' returned negative values (min {p.min():.4g}), so its outputs are not "
            "probabilities. If they are logits, set the member's 'output: logits' so softmax is applied."
        )
    p = np.maximum(p, 0.0)
    sums = p.sum(axis=1)
    if np.abs(sums - 1.0).max() > SUM_TOL:
        if (sums <= 0).any():
            raise UserError(
                f"member '{who}' returned an all-zero row (row {int(np.argmax(sums <= 0))}); "
                "cannot turn it into probabilities."
            )
    p = p / sums[:, None]
    return p.astype(np.float32)


def _expand_classes(p: np.ndarray, classes: Any, num_classes: int | None, who: str) -> np.ndarray:
    """Place an estimator's columns (its ``classes_``) at their label index 0..C-1."""
    if classes is None or num_classes is None:
        return p
    classes = np.asarray(classes)
    if classes.shape[0] == num_classes and np.array_equal(classes, np.arange(num_classes)):
        return p
    if (
        not np.issubdtype(classes.dtype, np.integer)
        or classes.min() < 0
        or classes.max() >= num_classes
    ):
        raise UserError(
            f"member '{who}' has classes {classes.tolist()[:10]}; expected integer labels 0..{num_classes - 1}. "
            "Label-encode the targets before fitting the member."
        )
    out = np.zeros((p.shape[0], num_classes), dtype=p.dtype)
    out[:, classes] = p
    return out


# ---------------------------------------------------------------- members


class SklearnMember:
    """A scikit-learn-style estimator (anything with ``predict_proba``) given in Python."""

    kind = "sklearn"

    def __init__(self, name: str, estimator: Any, num_classes: int | None = None) -> None:
        if not hasattr(estimator, "predict_proba"):
            raise UserError(
                f"member '{name}': {type(estimator).__name__} has no predict_proba. "
                "Pass a probabilistic classifier (e.g. SVC(probability=True))."
            )
        self.name = name
        self.estimator = estimator
        self.num_classes = num_classes

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        x = check_inputs(
            x, f"member '{self.name}'", getattr(self.estimator, "n_features_in_", None)
        )
        p = np.asarray(self.estimator.predict_proba(x))
        return _expand_classes(
            p, getattr(self.estimator, "classes_", None), self.num_classes, self.name
        )

    def serialized_bytes(self) -> tuple[int, str]:
        return len(pickle.dumps(self.estimator)), "len(pickle.dumps(estimator))"

    def fingerprint(self) -> str:
        return _sha256_bytes(b"sklearn", pickle.dumps(self.estimator))


class SklearnPickleMember(SklearnMember):
    """A pickled scikit-learn model loaded from a file the user said they trust."""

    kind = "sklearn-pickle"

    def __init__(self, name: str, path: Path, num_classes: int | None = None) -> None:
        try:
            with open(path, "rb") as fh:
                est = pickle.load(fh)  # noqa: S301 - only reached with trust_pickles=True
        except Exception as exc:
            raise UserError(
                f"member '{name}': cannot unpickle '{path}' ({type(exc).__name__}: {exc}). "
                "Re-save the model with the same scikit-learn version, or convert it to ONNX with skl2onnx."
            ) from exc
        super().__init__(name, est, num_classes)
        self.path = Path(path)

    def serialized_bytes(self) -> tuple[int, str]:
        return self.path.stat().st_size, "pickle file size"

    def fingerprint(self) -> str:
        return _sha256_bytes(b"sklearn-pickle", _file_sha256(self.path).encode())


class TorchMember:
    """An in-process torch module (or a TorchScript file) returning logits or probabilities."""

    kind = "torch"

    def __init__(
        self,
        name: str,
        module: Any,
        output: str = "logits",
        path: Path | None = None,
        width: int | None = None,
        input_shape: tuple[int, ...] | None = None,
    ) -> None:
        if output not in OUTPUTS:
            raise UserError(f"member '{name}': output must be one of {OUTPUTS}; got {output!r}.")
        self.name, self.module, self.output, self.path = name, module, output, path
        self.input_shape = (
            tuple(input_shape) if input_shape else None
        )  # e.g. (1, 8, 8) for a CNN teacher
        self.width = int(np.prod(self.input_shape)) if self.input_shape and width is None else width

    def _forward(self, x: np.ndarray) -> np.ndarray:
        import torch

        if self.kind == "torch" and hasattr(self.module, "eval"):
            self.module.eval()  # an exported program's module is already in inference form
        try:
            t = torch.from_numpy(x)
            with torch.no_grad():
                out = self.module(t.reshape(len(x), *self.input_shape) if self.input_shape else t)
        except (RuntimeError, ValueError, IndexError, AssertionError) as exc:
            raise UserError(
                f"member '{self.name}' ({self.kind}) failed on inputs of shape {list(x.shape)}: "
                f"{str(exc).splitlines()[0][:300]}. Check that it expects {x.shape[1]} features per row."
            ) from exc
        out = (
            out.detach().float().numpy()
            if hasattr(out, "detach")
            else np.asarray(out, dtype=np.float32)
        )
        return _softmax(out.astype(np.float64)) if self.output == "logits" else out

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self._forward(check_inputs(x, f"member '{self.name}'", self.width))

    def serialized_bytes(self) -> tuple[int, str]:
        if self.path is not None:
            return self.path.stat().st_size, f"{self.kind} file size"
        import torch

        buf = io.BytesIO()
        torch.save(self.module.state_dict(), buf)
        return buf.tell(), "torch.save(state_dict) bytes"

    def fingerprint(self) -> str:
        if self.path is not None:
            return _sha256_bytes(
                self.kind.encode(), _file_sha256(self.path).encode(), self.output.encode()
            )
        h = hashlib.sha256(b"torch" + self.output.encode() + type(self.module).__name__.encode())
        for k, v in self.module.state_dict().items():
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()


class Pt2Member(TorchMember):
    """A ``torch.export`` program saved as ``.pt2`` (safe to load: no pickled code)."""

    kind = "pt2"

    def __init__(self, name: str, path: Path, output: str = "logits") -> None:
        import torch

        try:
            ep = torch.export.load(str(path))
        except Exception as exc:
            raise UserError(
                f"member '{name}': '{path}' is not a readable torch.export program "
                f"({type(exc).__name__}: {str(exc)[:200]}). Save it with torch.export.save."
            ) from exc
        input_shape = None
        for (
            node
        ) in ep.graph.nodes:  # the user input's static per-row shape, e.g. (64,) or (1, 8, 8)
            if node.op == "placeholder" and node.name in ep.graph_signature.user_inputs:
                shape = getattr(node.meta.get("val"), "shape", None)
                if (
                    shape is not None
                    and len(shape) >= 2
                    and all(isinstance(s, int) for s in shape[1:])
                ):
                    input_shape = tuple(int(s) for s in shape[1:])
                break
        super().__init__(name, ep.module(), output=output, path=Path(path), input_shape=input_shape)


class OnnxMember:
    """Any ONNX classifier run by onnxruntime; skl2onnx's (label, probabilities) outputs are handled."""

    kind = "onnx"

    def __init__(self, name: str, path: Path, output: str = "probs") -> None:
        import onnxruntime as ort

        if output not in OUTPUTS:
            raise UserError(f"member '{name}': output must be one of {OUTPUTS}; got {output!r}.")
        self.name, self.path, self.output = name, Path(path), output
        so = ort.SessionOptions()
        so.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise UserError(
                f"member '{name}': '{path}' is not a valid ONNX model ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:200]}). Re-export it (e.g. skl2onnx.to_onnx or torch.onnx.export)."
            ) from exc
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise UserError(
                f"member '{name}': '{path}' has {len(inputs)} inputs {[i.name for i in inputs]}; "
                "a teacher member takes one [n, d] float input."
            )
        self.input = inputs[0]
        shape = (
            self.input.shape
        )  # per-row shape (64,) or (1, 8, 8) when static: rows are reshaped to it
        static = len(shape) >= 2 and all(isinstance(s, int) for s in shape[1:])
        self.input_shape = tuple(shape[1:]) if static else None
        self.width = int(np.prod(self.input_shape)) if static else None
        self.input_dtype = np.float64 if "double" in self.input.type else np.float32
        self.output_name = self._pick_output()

    def _pick_output(self) -> str:
        """skl2onnx classifiers output (label, probabilities): take the probabilities."""
        outs = self.session.get_outputs()
        if len(outs) == 1:
            return outs[0].name
        for o in outs:  # zipmap=False: a float tensor [n, C]; zipmap=True: seq(map)
            if (
                "float" in o.type or "double" in o.type or o.type.startswith("seq(map")
            ) and "prob" in o.name.lower():
                return o.name
        floats = [
            o
            for o in outs
            if o.type.startswith("tensor(float") or o.type.startswith("tensor(double")
        ]
        if len(floats) == 1:
            return floats[0].name
        raise UserError(
            f"member '{self.name}': cannot tell which of the outputs {[(o.name, o.type) for o in outs]} "
            f"of '{self.path}' holds the probabilities. Export a model with one float output [n, C]."
        )

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        x = check_inputs(x, f"member '{self.name}'", self.width)
        try:
            feed = (
                x.astype(self.input_dtype).reshape(len(x), *self.input_shape)
                if self.input_shape
                else x
            )
            (out,) = self.session.run(
                [self.output_name], {self.input.name: feed.astype(self.input_dtype)}
            )
        except Exception as exc:
            raise UserError(
                f"member '{self.name}': onnxruntime failed on inputs of shape {list(x.shape)}: "
                f"{str(exc).splitlines()[0][:300]}"
            ) from exc
        if isinstance(out, list):  # ZipMap: a list of {label: probability}
            labels = sorted(out[0]) if out else []
            out = np.array([[row[k] for k in labels] for row in out], dtype=np.float64)
        out = np.asarray(out, dtype=np.float64)
        return _softmax(out) if self.output == "logits" else out

    def serialized_bytes(self) -> tuple[int, str]:
        return self.path.stat().st_size, "ONNX file size"

    def fingerprint(self) -> str:
        return _sha256_bytes(b"onnx", _file_sha256(self.path).encode(), self.output.encode())


class PrecomputedMember:
    """Outputs computed elsewhere for known inputs: it can label exactly those rows.

    Rows are matched to the stored inputs by nearest neighbour within a small
    tolerance, so float round-off from normalization does not break the match.
    """

    kind = "precomputed"
    MATCH_TOL = 1e-4

    def __init__(
        self, name: str, inputs_path: Path, outputs_path: Path, output: str = "probs"
    ) -> None:
        self.name, self.inputs_path, self.outputs_path, self.output = (
            name,
            Path(inputs_path),
            Path(outputs_path),
            output,
        )
        self.inputs = self._load(self.inputs_path, "inputs")
        self.outputs = self._load(self.outputs_path, "outputs")
        if self.inputs.ndim != 2 or self.outputs.ndim != 2 or len(self.inputs) != len(self.outputs):
            raise UserError(
                f"member '{name}': inputs {self.inputs.shape} and outputs {self.outputs.shape} must be "
                "2-D with one output row per input row."
            )
        self._index = None

    def _load(self, path: Path, what: str) -> np.ndarray:
        try:
            return np.load(path, allow_pickle=False)
        except Exception as exc:
            raise UserError(
                f"member '{self.name}': cannot read {what} '{path}' as a .npy array without pickles "
                f"({type(exc).__name__}: {exc}). Save it with numpy.save of a float array."
            ) from exc

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        from sklearn.neighbors import NearestNeighbors

        x = check_inputs(x, f"member '{self.name}'", self.inputs.shape[1])
        if self._index is None:
            self._index = NearestNeighbors(n_neighbors=1).fit(self.inputs.astype(np.float32))
        dist, idx = self._index.kneighbors(x)
        tol = self.MATCH_TOL * (1.0 + np.abs(x).max(axis=1))
        missing = np.flatnonzero(dist[:, 0] > tol)
        if missing.size:
            raise UserError(
                f"precomputed member '{self.name}' has no outputs for {missing.size} of {len(x)} rows "
                f"(first: row {missing[0]}); it can label only the inputs stored in '{self.inputs_path}'. "
                "MUNGE, RANDOM and NBE transfer sets and jitter create new rows, which need a runnable member "
                "(onnx, pt2, torch, sklearn): add one, or use transfer.method 'original' with jitter 0."
            )
        out = self.outputs[idx[:, 0]].astype(np.float64)
        return _softmax(out) if self.output == "logits" else out

    def serialized_bytes(self) -> tuple[int, str]:
        return (
            self.outputs_path.stat().st_size,
            "outputs .npy file size (the model that produced them is not available)",
        )

    def fingerprint(self) -> str:
        return _sha256_bytes(
            b"precomputed",
            _file_sha256(self.inputs_path).encode(),
            _file_sha256(self.outputs_path).encode(),
            self.output.encode(),
        )


def member_fingerprint(m: Member) -> str:
    """A member's content hash; members from elsewhere without one hash their name, kind and size."""
    fp = getattr(m, "fingerprint", None)
    if callable(fp):
        return fp()
    return _sha256_bytes(
        b"opaque", m.name.encode(), m.kind.encode(), repr(m.serialized_bytes()).encode()
    )


# ---------------------------------------------------------------- the ensemble


def combine_probas(probas: list[np.ndarray], weights: np.ndarray, combine: str) -> np.ndarray:
    """Weighted arithmetic mean of probabilities, or geometric mean renormalized (Hinton 2015 §2)."""
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    if combine == "geometric":
        logp = sum(
            wi * np.log(np.maximum(p.astype(np.float64), LOG_FLOOR)) for wi, p in zip(w, probas)
        )
        return _softmax(logp).astype(np.float32)
    return sum(wi * p.astype(np.float64) for wi, p in zip(w, probas)).astype(np.float32)


@dataclass
class Teacher:
    """The ensemble: members, their weights and how their probabilities are combined.

    ``combine``: ``mean`` = arithmetic mean weighted by ``weights`` (uniform unless
    ensemble selection set them), ``geometric`` = weighted mean of log-probabilities
    renormalized, ``weights`` = arithmetic mean with weights the user gave.
    """

    members: list[Member]
    weights: np.ndarray
    combine: str = "mean"
    num_classes: int | None = None
    selection: dict | None = None
    _fingerprint: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.members:
            raise UserError(
                "the teacher has no members. Give teacher.library, teacher.members or members=[...]."
            )
        if self.combine not in COMBINES:
            raise UserError(
                f"teacher.combine must be one of {', '.join(COMBINES)}; got {self.combine!r}."
            )
        names = [m.name for m in self.members]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise UserError(
                f"teacher member names must be unique; {dup} appear more than once. Rename them."
            )
        self.weights = np.asarray(self.weights, dtype=np.float64)
        if (
            self.weights.shape != (len(self.members),)
            or (self.weights < 0).any()
            or self.weights.sum() <= 0
        ):
            raise UserError(
                f"teacher weights {self.weights.tolist()} must be {len(self.members)} non-negative "
                "numbers, not all zero (one per member)."
            )

    def active(self) -> list[tuple[Member, float]]:
        """Members with a non-zero weight (ensemble selection may drop some)."""
        return [(m, w) for m, w in zip(self.members, self.weights) if w > 0]

    def member_probas(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Each member's checked probabilities on ``x`` (all members, including weight 0)."""
        x = check_inputs(x, "the teacher")
        return {
            m.name: check_probs(m.predict_proba(x), m.name, len(x), self.num_classes)
            for m in self.members
        }

    def _predict_batch(self, x: np.ndarray) -> np.ndarray:
        act = self.active()
        probas = [check_probs(m.predict_proba(x), m.name, len(x), self.num_classes) for m, _ in act]
        return combine_probas(probas, np.array([w for _, w in act]), self.combine)

    def predict_proba(self, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """The ensemble's probabilities, float32 ``[n, C]``, computed in batches."""
        x = check_inputs(x, "the teacher")
        if len(x) == 0:
            raise UserError("the teacher was asked to label 0 rows; check the transfer set.")
        return np.concatenate(
            [self._predict_batch(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        )

    def fingerprint(self) -> str:
        """Stable hash of members' contents, weights and combine rule: the cache key's teacher half."""
        if self._fingerprint is None:
            h = hashlib.sha256(self.combine.encode())
            for m, w in zip(self.members, self.weights):
                h.update(f"{m.name}|{m.kind}|{w:.12g}|{member_fingerprint(m)}".encode())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def describe(self) -> dict:
        """The card's ``teacher`` record: members with kind, weight and measured size."""
        members, total = [], 0
        for m, w in zip(self.members, self.weights / self.weights.sum()):
            nbytes, how = m.serialized_bytes()
            members.append(
                {
                    "name": m.name,
                    "kind": m.kind,
                    "weight": round(float(w), 6),
                    "bytes": int(nbytes),
                    "bytes_method": how,
                }
            )
            if w > 0:
                total += int(nbytes)
        return {
            "combine": self.combine,
            "members": members,
            "bytes": total,
            "bytes_method": "sum of the serialized sizes of members with non-zero weight (see each member)",
            "selection": self.selection,
        }


# ---------------------------------------------------------------- recipe


def _check_weights(v: Any) -> str | None:
    if not isinstance(v, dict) or not all(
        isinstance(k, str) and isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0
        for k, w in v.items()
    ):
        return "must map member names to non-negative numbers, e.g. {rf: 2, knn: 1}"
    return None


def _check_library(v: Any) -> str | None:
    from .library import MODELS

    if not isinstance(v, list) or not all(isinstance(n, str) for n in v):
        return "must be a list of model names"
    bad = [n for n in v if n not in MODELS]
    if bad:
        return f"unknown model(s) {bad}; allowed: {', '.join(MODELS)}"
    if len(set(v)) != len(v):
        return "lists a model twice"
    return None


MEMBER_FIELDS: dict[str, Field] = {
    "name": Field(str, doc="unique member name"),
    "kind": Field(
        str,
        choices=("onnx", "pt2", "torch", "precomputed", "sklearn-pickle"),
        doc="how the member is stored",
    ),
    "path": Field(
        str, default=None, doc="model file (onnx, pt2, TorchScript, pickle), relative to the recipe"
    ),
    "inputs": Field(
        str, default=None, doc="precomputed: .npy of the model-ready inputs the outputs belong to"
    ),
    "outputs": Field(str, default=None, doc="precomputed: .npy of outputs aligned with 'inputs'"),
    "input_shape": Field(
        list,
        default=None,
        check=lambda v: (
            None
            if all(isinstance(i, int) and i > 0 for i in v)
            else "must be a list of positive ints, e.g. [1, 8, 8]"
        ),
        doc="torch (TorchScript): per-row input shape; pt2 and onnx read it from the file",
    ),
    "output": Field(
        str,
        default=None,
        choices=OUTPUTS,
        doc="what the member returns: probs or logits (default: logits for torch/pt2, probs otherwise)",
    ),
}

TEACHER_FIELDS: dict[str, Field] = {
    "library": Field(
        list, default=[], check=_check_library, doc="models built and fitted on the training split"
    ),
    "members": Field(
        list,
        default=[],
        doc="explicit members: list of {name, kind, path | inputs+outputs, output}",
    ),
    "combine": Field(
        str, default="mean", choices=COMBINES, doc="how member probabilities are combined"
    ),
    "weights": Field(
        dict, default=None, check=_check_weights, doc="combine: weights -> member name to weight"
    ),
    "selection": Field(
        str,
        default="greedy",
        choices=("greedy", "bagged", "none"),
        doc="Caruana 2004 ensemble selection on the validation split (when >= 2 members); "
        "bagged: §2.4, selection on random halves of the library, averaged",
    ),
    "selection_bags": Field(int, default=20, min=1, max=1000, doc="bagged: number of bags"),
    "selection_bag_fraction": Field(
        float,
        default=0.5,
        min=0.05,
        max=1.0,
        doc="bagged: share of the library drawn into each bag",
    ),
    "selection_metric": Field(
        str,
        default="nll",
        choices=("nll", "accuracy", "rmse"),
        doc="validation score ensemble selection optimizes",
    ),
    "selection_init": Field(
        int, default=3, min=0, doc="sorted initialization: start from the k best members"
    ),
    "selection_iters": Field(int, default=50, min=1, doc="greedy additions (with replacement)"),
    "trust_pickles": Field(
        bool, default=False, doc="allow sklearn-pickle members (a pickle runs code when loaded)"
    ),
    "num_classes": Field(int, default=None, min=2, doc="default: max label + 1"),
}

PICKLE_RISK = (
    "loading a pickle runs arbitrary code from the file, so pickled models are refused by default. "
    "If you made this file yourself or trust its source, pass --trust-pickles (or set "
    "teacher.trust_pickles: true in the recipe); better, convert it to ONNX with skl2onnx."
)


def _resolve(base_dir: Path, spec: dict, key: str, i: int) -> Path:
    value = spec.get(key)
    if not value:
        raise UserError(
            f"recipe key 'teacher.members[{i}].{key}' is required for kind '{spec['kind']}'."
        )
    p = Path(value)
    p = p if p.is_absolute() else Path(base_dir) / p
    if not p.exists():
        raise UserError(
            f"recipe key 'teacher.members[{i}].{key}': file '{p}' not found "
            f"(paths are relative to '{base_dir}'). Fix the path or create the file."
        )
    return p


def _load_onnx(spec: dict, i: int, base: Path, nc: int | None, trust: bool) -> Member:
    return OnnxMember(
        spec["name"], _resolve(base, spec, "path", i), output=spec["output"] or "probs"
    )


def _load_pt2(spec: dict, i: int, base: Path, nc: int | None, trust: bool) -> Member:
    return Pt2Member(
        spec["name"], _resolve(base, spec, "path", i), output=spec["output"] or "logits"
    )


def _load_torchscript(spec: dict, i: int, base: Path, nc: int | None, trust: bool) -> Member:
    import torch

    path = _resolve(base, spec, "path", i)
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise UserError(
            f"member '{spec['name']}': '{path}' is not a TorchScript file ({type(exc).__name__}). "
            "Save with torch.jit.save(torch.jit.script(model)), or use kind 'pt2' for torch.export."
        ) from exc
    return TorchMember(
        spec["name"],
        module,
        output=spec["output"] or "logits",
        path=path,
        input_shape=spec["input_shape"],
    )


def _load_precomputed(spec: dict, i: int, base: Path, nc: int | None, trust: bool) -> Member:
    return PrecomputedMember(
        spec["name"],
        _resolve(base, spec, "inputs", i),
        _resolve(base, spec, "outputs", i),
        output=spec["output"] or "probs",
    )


def _load_pickle(spec: dict, i: int, base: Path, nc: int | None, trust: bool) -> Member:
    path = _resolve(base, spec, "path", i)
    if not trust:
        raise UserError(f"member '{spec['name']}' is a pickled model ('{path}'): {PICKLE_RISK}")
    return SklearnPickleMember(spec["name"], path, nc)


MEMBER_LOADERS: dict[str, Callable[[dict, int, Path, int | None, bool], Member]] = {
    "onnx": _load_onnx,
    "pt2": _load_pt2,
    "torch": _load_torchscript,
    "precomputed": _load_precomputed,
    "sklearn-pickle": _load_pickle,
}


def load_member(
    spec: dict, i: int, base_dir: Path, num_classes: int | None = None, trust_pickles: bool = False
) -> Member:
    """Build one explicit member from its recipe entry (validated against MEMBER_FIELDS)."""
    if isinstance(spec, dict) and "kind" in spec and spec["kind"] not in MEMBER_LOADERS:
        raise UserError(
            f"recipe key 'teacher.members[{i}].kind' must be one of {', '.join(MEMBER_LOADERS)}; "
            f"got {spec['kind']!r}. (kind 'sklearn' is for estimators passed in Python.)"
        )
    spec = validate(f"teacher.members[{i}]", spec, MEMBER_FIELDS)
    return MEMBER_LOADERS[spec["kind"]](spec, i, Path(base_dir), num_classes, trust_pickles)


def build_teacher(
    section: dict | None,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray | None,
    y_val: np.ndarray | None,
    *,
    seed: int,
    base_dir: Path,
    members: list[Member] | None = None,
    trust_pickles: bool = False,
) -> Teacher:
    """Build the teacher a recipe describes: library models fitted on train, explicit members
    loaded from files, Python members; then ensemble selection on the validation split
    (Caruana et al. 2004, as used by Bucilua et al. 2006 §2) unless combine is 'weights'.
    """
    from .library import build_library
    from .selection import bagged_ensemble_selection, ensemble_selection

    cfg = validate("teacher", section, TEACHER_FIELDS)
    trust = trust_pickles or cfg["trust_pickles"]
    y_train = np.asarray(y_train)
    labels = [y_train] + ([np.asarray(y_val)] if y_val is not None else [])
    nc = cfg["num_classes"] or int(max(int(y.max()) for y in labels if len(y)) + 1)
    x_train = check_inputs(x_train, "teacher training data")

    built: list[Member] = []
    if cfg["library"]:
        built.extend(
            build_library(cfg["library"], x_train, y_train, seed=seed, num_classes=nc).values()
        )
    for i, spec in enumerate(cfg["members"]):
        built.append(load_member(spec, i, base_dir, nc, trust))
    for m in members or []:
        if not isinstance(m, Member):
            raise UserError(
                f"members=[...] must hold Member objects (e.g. SklearnMember(name, estimator)); "
                f"got {type(m).__name__}."
            )
        if isinstance(m, SklearnMember) and m.num_classes is None:
            m.num_classes = nc
        built.append(m)
    if not built:
        raise UserError(
            "the teacher has no members: set teacher.library (e.g. [rf, knn, logreg]) or "
            "teacher.members, or pass members=[...]."
        )

    if cfg["combine"] == "weights":
        given = cfg["weights"] or {}
        names = [m.name for m in built]
        unknown = sorted(set(given) - set(names))
        missing = [n for n in names if n not in given]
        if unknown or missing:
            raise UserError(
                f"recipe key 'teacher.weights' must give a weight for every member {names}; "
                f"missing {missing}, unknown {unknown}."
            )
        return Teacher(built, np.array([given[n] for n in names], float), "weights", nc, None)

    teacher = Teacher(built, np.ones(len(built)), cfg["combine"], nc, None)
    if cfg["selection"] != "none" and len(built) > 1:
        if x_val is None or y_val is None or len(y_val) == 0:
            raise UserError(
                f"teacher.selection '{cfg['selection']}' needs a validation split; set "
                "data.val_fraction > 0 or teacher.selection: none."
            )
        probas = teacher.member_probas(x_val)
        common = dict(
            metric=cfg["selection_metric"],
            init_k=cfg["selection_init"],
            max_iter=cfg["selection_iters"],
            combine=cfg["combine"],
        )
        if cfg["selection"] == "bagged":
            result = bagged_ensemble_selection(
                probas,
                np.asarray(y_val),
                bags=cfg["selection_bags"],
                fraction=cfg["selection_bag_fraction"],
                seed=seed,
                **common,
            )
        else:
            result = ensemble_selection(probas, np.asarray(y_val), **common)
        teacher = Teacher(
            built,
            np.array([result.weights[m.name] for m in built]),
            cfg["combine"],
            nc,
            result.record(),
        )
    return teacher
