"""Teacher members read from files and run by a foreign runtime: ONNX (onnxruntime), outputs
saved with the rows they were computed for (precomputed ``.npy``), Keras 3 ``.keras`` files.

They follow the member protocol of ``members.py`` and its checks: inputs go through
:func:`~distill.members.check_inputs`, declared outputs through :func:`~distill.members.as_probs`,
and each fingerprint hashes the files it reads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ground.errors import UserError

from .members import OUTPUTS, _file_sha256, _sha256_bytes, as_probs, check_inputs


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
        if not any(("float" in o.type or "double" in o.type) for o in outs):
            raise UserError(
                f"member '{self.name}': '{self.path}' outputs only {[(o.name, o.type) for o in outs]}"
                ", class labels without probabilities. A teacher member must output one "
                "probability (or logit) per class and row, [n, num_classes]: re-export it with its "
                "probabilities (skl2onnx: a classifier with predict_proba, options={'zipmap': False})."
            )
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
        return as_probs(out, self.output, self.name)

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
        return as_probs(out, self.output, self.name)

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


class KerasMember:
    """A Keras 3 model saved as ``.keras``, run on the torch backend (optional extra ``tinyship[keras]``).

    Loaded with ``safe_mode=True``, so a file cannot run Python code (Lambda layers) when read.
    Rows are reshaped to the model's per-row input shape; a channels-last image input
    ``[H, W, C]`` gets rows in the data's ``[C, H, W]`` order, transposed.
    """

    kind = "keras"

    def __init__(self, name: str, path: Path, output: str = "probs") -> None:
        import os

        os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is first imported
        try:
            import keras
        except ImportError as exc:
            raise UserError(
                f"member '{name}' is a Keras model, but keras is not installed. "
                "Install the extra: pip install 'tinyship[keras]'."
            ) from exc
        self.name, self.path, self.output = name, Path(path), output
        try:
            self.model = keras.saving.load_model(str(path), safe_mode=True)
        except Exception as exc:
            raise UserError(
                f"member '{name}': '{path}' cannot be loaded as a Keras model ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:200]}). Save it with model.save('model.keras')."
            ) from exc
        shape = tuple(self.model.input_shape[1:])
        if not all(isinstance(s, int) for s in shape):
            raise UserError(
                f"member '{name}': the Keras model's input shape {list(self.model.input_shape)} "
                "must be static per row (only the batch dimension may be None)."
            )
        self.input_shape = shape
        self.width = int(np.prod(shape))
        self.backend = keras.backend.backend()
        self.framework = f"keras {keras.__version__} ({self.backend} backend)"

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        x = check_inputs(x, f"member '{self.name}'", self.width)
        feed = x
        if len(self.input_shape) == 3:  # [H, W, C] from rows laid out [C, H, W]
            h, w, c = self.input_shape
            feed = x.reshape(len(x), c, h, w).transpose(0, 2, 3, 1)
        elif len(self.input_shape) > 1:
            feed = x.reshape(len(x), *self.input_shape)
        try:
            out = self.model.predict(feed, batch_size=4096, verbose=0)
        except Exception as exc:
            raise UserError(
                f"member '{self.name}' (keras) failed on inputs of shape {list(feed.shape)}: "
                f"{str(exc).splitlines()[0][:300]}"
            ) from exc
        return as_probs(np.asarray(out), self.output, self.name)

    def serialized_bytes(self) -> tuple[int, str]:
        return self.path.stat().st_size, ".keras file size"

    def fingerprint(self) -> str:
        return _sha256_bytes(b"keras", _file_sha256(self.path).encode(), self.output.encode())
