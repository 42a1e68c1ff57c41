"""Teacher members: the models an ensemble is made of, from any framework.

A teacher (``ensemble.py``) is an ensemble of members (Bucilua et al. 2006 §2 compress an ensemble
built by ensemble selection; Hinton et al. 2015 §2 average its predictions). Each member maps
inputs ``[n, d]`` to class probabilities ``[n, C]``; they can come from any framework:

- ``sklearn``: an estimator with ``predict_proba`` from the Python API (:class:`SklearnMember`);
- ``sklearn-pickle``: a pickled estimator file, only with an explicit trust flag (pickles run code);
- ``onnx``: any ONNX file run by onnxruntime (e.g. a random forest converted with
  skl2onnx; ``file_members.py``, with ``precomputed`` and ``keras``);
- ``torch``: an in-process ``nn.Module`` (API) or a TorchScript file (recipe);
- ``pt2``: a ``torch.export`` program (``ground.pt2.load``: no pickled entries);
- ``precomputed``: outputs saved next to the inputs they were computed for (those rows only);
- ``keras``: a Keras 3 ``.keras`` file on the torch backend (extra ``tinyship[keras]``);
- ``savedmodel``: a TensorFlow SavedModel folder, its graph checked op by op before
  TensorFlow loads it (``savedmodel.py``; extra ``tinyship[tensorflow]``);
- ``python``: any object with ``predict_proba`` (or a callable) given through the API,
  never pickled (:class:`PythonMember`).

The input contract: every explicit member receives the features exactly as they are in
the data file, unless it declares ``input: normalized`` (:class:`NormalizedInput`); library
models, fitted on normalized features, are wrapped the same way. What a member declares it
returns (``output: probs | logits``) is checked against what it returns (:func:`as_probs`).

Every adapter checks what goes in (:func:`check_inputs`) and what comes out
(:func:`check_probs`), so a foreign model fails with a message, not a wrong label.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ground.errors import InternalError, UserError
from ground.probs import softmax as _softmax

KINDS = (
    "sklearn",
    "sklearn-pickle",
    "onnx",
    "torch",
    "pt2",
    "precomputed",
    "keras",
    "savedmodel",
    "python",
)
OUTPUTS = ("probs", "logits")
SUM_TOL = 1e-3  # rows of a member's probabilities must sum to 1 within this


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
    from ground.rundir import sha256_file

    return sha256_file(path)


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
    """A member's output must be [n, C], finite, rows summing to 1. Rows within ``SUM_TOL`` of
    1 are renormalized exactly (float round-off); negative outputs, labels only, and rows that
    do not sum to 1 (scores, vote counts) are refused with what to output instead.
    """
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != n or p.shape[1] == 1:
        raise UserError(
            f"member '{who}' returned outputs of shape {p.shape}; a member must output [{n}, "
            f"num_classes]: one probability per class and row (or logits, declared 'output: "
            "logits'). Labels alone carry no soft targets: export its probabilities (sklearn "
            "predict_proba; skl2onnx: the probabilities output, zipmap off; a network: logits)."
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
        worst = int(np.argmax(np.abs(sums - 1.0)))
        raise UserError(
            f"member '{who}' returned probabilities whose row {worst} sums to {sums[worst]:.4g}, "
            f"not 1 (tolerance {SUM_TOL}). If these are scores or logits, declare the member's "
            "'output: logits' (softmax is applied); if they are probabilities, normalize each row."
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

    probe: np.ndarray | None = None  # set by build_teacher: rows to hash outputs on

    def serialized_bytes(self) -> tuple[int | None, str]:
        try:
            return len(pickle.dumps(self.estimator)), "len(pickle.dumps(estimator))"
        except Exception as exc:  # e.g. an object holding an onnxruntime session
            return None, f"not measured: the estimator cannot be pickled ({type(exc).__name__})"

    def fingerprint(
        self,
    ) -> str:  # kept once taken, and pickled along: pickle bytes vary by process
        if not getattr(self, "_fp", None):
            try:
                self._fp = _sha256_bytes(b"sklearn", pickle.dumps(self.estimator))
            except Exception:
                return _probe_fingerprint(self)
        return self._fp


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
        return as_probs(out, self.output, self.name)

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
    """A ``torch.export`` program saved as ``.pt2``, loaded by :func:`ground.pt2.load`.

    torch.export.load would unpickle parts of the archive; ground.pt2 refuses any such
    entry unless the recipe or the command says ``trust_pickles``.
    """

    kind = "pt2"

    def __init__(
        self, name: str, path: Path, output: str = "logits", trust_pickles: bool = False
    ) -> None:
        from ground import pt2

        try:
            ep = pt2.load(path, trust_pickles=trust_pickles)
        except pt2.UnsafeArchiveError as exc:
            raise UserError(f"member '{name}': {exc}") from exc
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


def member_fingerprint(m: Member) -> str:
    """A member's content hash; members from elsewhere without one hash their name, kind and size."""
    fp = getattr(m, "fingerprint", None)
    if callable(fp):
        return fp()
    return _sha256_bytes(
        b"opaque", m.name.encode(), m.kind.encode(), repr(m.serialized_bytes()).encode()
    )


# ---------------------------------------------------------------- the input/output contract

INPUTS = ("raw", "normalized")
PROBE_ROWS = 64  # rows of the training split a Python member's outputs are hashed on


def as_probs(out: Any, declared: str, who: str) -> np.ndarray:
    """A member's raw output turned into probabilities per its declaration, checked both ways.

    ``logits`` rows that are already probabilities (all in [0, 1], summing to 1) would be
    softmaxed a second time into near-uniform rows; ``probs`` rows that do not sum to 1 would
    be silently renormalized. Both are refused with the declaration to use instead.
    """
    out = np.asarray(out, dtype=np.float64)
    if out.ndim != 2 or not len(out) or not np.isfinite(out).all():
        return out if declared == "probs" else _softmax(out) if out.ndim == 2 else out
    if declared == "logits":
        if (out >= 0).all() and (out <= 1).all() and np.abs(out.sum(1) - 1).max() <= SUM_TOL:
            raise UserError(
                f"member '{who}' is declared 'output: logits' but returns rows that are already "
                "probabilities (all in [0, 1], each summing to 1); softmax would flatten them. "
                "Declare 'output: probs' for this member."
            )
        return _softmax(out)
    if (out >= -1e-6).all():
        worst = int(np.argmax(np.abs(out.sum(1) - 1)))
        if abs(out[worst].sum() - 1) > SUM_TOL:
            raise UserError(
                f"member '{who}' is declared 'output: probs' but row {worst} sums to "
                f"{out[worst].sum():.4g}, not 1 (tolerance {SUM_TOL}). If these are scores or "
                "logits, declare 'output: logits' (softmax is applied); if they are probabilities, "
                "normalize each row to sum to 1."
            )
    return out


class NormalizedInput:
    """A member fed the normalized features (``(x - mean) / std`` of the training split).

    Library models are fitted on them; an explicit member gets them only when it declares
    ``input: normalized``. Every other member receives the rows exactly as in the data file.
    """

    input_kind = "normalized"

    def __init__(self, member: Any, normalize: Callable[[np.ndarray], np.ndarray], key: str):
        self.member, self.normalize, self.key = member, normalize, key
        self.name, self.kind = member.name, member.kind

    def __getattr__(self, attr: str) -> Any:  # output, output_name, ...: the wrapped member's
        if attr == "member":
            raise AttributeError(attr)
        return getattr(self.member, attr)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.member.predict_proba(self.normalize(np.asarray(x, dtype=np.float32)))

    def serialized_bytes(self) -> tuple[int | None, str]:
        return self.member.serialized_bytes()

    def fingerprint(self) -> str:
        return _sha256_bytes(
            b"normalized", self.key.encode(), member_fingerprint(self.member).encode()
        )


class PythonMember:
    """Any Python object with ``predict_proba`` (or a callable ``x -> outputs``), never pickled.

    Its fingerprint (the teacher-output cache key) comes from ``name`` and ``version`` when
    the user gives a version, else from a hash of its outputs on a fixed probe (the first
    rows of the training split), so an object holding e.g. an onnxruntime session works.
    """

    kind = "python"

    def __init__(
        self,
        model: Any,
        name: str | None = None,
        version: str | None = None,
        output: str = "probs",
        input: str = "raw",
    ) -> None:
        if not (hasattr(model, "predict_proba") or callable(model)):
            raise UserError(
                f"members=[...]: {type(model).__name__} has no predict_proba and is not callable. "
                "Pass an object with predict_proba(x) -> [n, C] probabilities, or a function."
            )
        if output not in OUTPUTS:
            raise UserError(f"member '{name}': output must be one of {OUTPUTS}; got {output!r}.")
        if input not in INPUTS:
            raise UserError(f"member '{name}': input must be one of {INPUTS}; got {input!r}.")
        self.model, self.version, self.output, self.input_kind = model, version, output, input
        self.name = name or getattr(model, "name", None) or type(model).__name__
        self.probe: np.ndarray | None = None
        self.num_classes: int | None = None

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        x = check_inputs(x, f"member '{self.name}'")
        fn = getattr(self.model, "predict_proba", None) or self.model
        out = np.asarray(fn(x))
        p = as_probs(out, self.output, self.name)
        return _expand_classes(
            p, getattr(self.model, "classes_", None), self.num_classes, self.name
        )

    def serialized_bytes(self) -> tuple[int | None, str]:
        try:
            return len(pickle.dumps(self.model)), "len(pickle.dumps(model)) (in memory only)"
        except Exception as exc:
            return None, f"not measured: the object cannot be serialized ({type(exc).__name__})"

    def fingerprint(self) -> str:
        if self.version is not None:
            return _sha256_bytes(b"python", self.name.encode(), str(self.version).encode())
        return _probe_fingerprint(self)


def member_record(m: Any) -> dict:
    """What the card says a member was fed and which of its outputs was used."""
    rec = {"input": getattr(m, "input_kind", "raw"), "output": getattr(m, "output", "probs")}
    name = getattr(m, "output_name", None)
    if name is not None:
        rec["output_name"] = name
    if getattr(m, "version", None) is not None:
        rec["version"] = str(m.version)
    if getattr(m, "framework", None) is not None:  # e.g. 'tensorflow 2.21.0' for a SavedModel
        rec["framework"] = m.framework
    return rec


def _probe_fingerprint(m: Any) -> str:
    """A hash of a member's outputs on the fixed probe rows: its identity without pickling it."""
    if getattr(m, "probe", None) is None:
        raise InternalError(f"member '{m.name}': fingerprint asked before a probe was set")
    p = np.asarray(m.predict_proba(m.probe), dtype=np.float64)
    return _sha256_bytes(b"probe", m.name.encode(), np.round(p, 6).tobytes())
