"""TensorFlow SavedModel teacher members (``kind: savedmodel``; extra ``tinyship[tensorflow]``).

A SavedModel is a graph, not Python: ``tf.saved_model.load`` rebuilds its functions from
``saved_model.pb`` and restores the variables, and runs no Python from the folder (tinyship
never reads ``keras_metadata.pb``, the one place legacy Keras keeps Python code). A graph can
still hold ops that touch the machine: ``PyFunc`` calls back into Python, ``WriteFile`` and
``SaveV2`` write any path, summary and debug ops write dumps, ``Send``/``Recv``/RPC ops talk
to other processes. So ``saved_model.pb`` is read once and every op of every function is
checked before TensorFlow sees the model (:func:`check_graph`): such ops are refused with
one line naming the op and the function it sits in. The checkpoint ops TensorFlow writes for
itself (``RestoreV2`` to read the model's variables, ``SaveV2`` to save them) are allowed
only in the saver's own functions, never where the signature can reach them. TensorFlow then
loads a private copy built from the checked bytes, so the file cannot change in between.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ground.errors import UserError, require

from .members import OUTPUTS, as_probs, check_inputs

EXTRA = "tensorflow"
MAX_GRAPH_BYTES = 1 << 30
# ops that run Python, read or write files, open sockets, or write summaries and debug dumps
DENIED = re.compile(
    r"PyFunc|ReadFile|WriteFile|MatchingFiles|ImmutableConst|FileSystem|FromTextFile|"
    r"Reader|Writer|Summary|^Debug|Dataset|Iterator|Print|Rpc|RemoteCall|Send|Recv|"
    r"Collective|Nccl|TPU|LoadAndRemap|DecodeProto|EncodeProto|Sql|LMDB|RecordInput|"
    r"Save|Restore|Checkpoint|ShardedFile"
)
RESTORE_OPS = frozenset({"RestoreV2", "Restore", "RestoreSlice", "ShardedFilename"})
SAVE_OPS = frozenset({"SaveV2", "Save", "SaveSlices", "MergeV2Checkpoints", "ShardedFilename"})


def _node_name(tensor: str) -> str:
    return tensor.lstrip("^").split(":")[0]


def _called(node: Any) -> set[str]:
    """Functions a node calls through its attributes (``f`` of PartitionedCall, branches, ...)."""
    out = set()
    for value in node.attr.values():
        if value.HasField("func"):
            out.add(value.func.name)
        out.update(f.name for f in value.list.func)
    return out


def _reach(graph: Any, functions: dict[str, Any], tensors: list[str]) -> set[str]:
    """Top-level nodes (``node:NAME``) and functions reachable from the given tensor names."""
    nodes = {n.name: n for n in graph.node}
    seen: set[str] = set()
    todo = [f"node:{_node_name(t)}" for t in tensors if t]
    while todo:
        key = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        kind, name = key.split(":", 1)
        if kind == "node" and name in nodes:
            node = nodes[name]
            todo += [f"node:{_node_name(i)}" for i in node.input]
            todo += [f"fn:{f}" for f in _called(node)]
        elif kind == "fn" and name in functions:
            for node in functions[name].node_def:
                todo += [f"fn:{f}" for f in _called(node)]
    return seen


def check_graph(saved_model: Any, path: Path, who: str) -> None:
    """Refuse a SavedModel whose graph holds an op that could act outside the computation."""
    for meta in saved_model.meta_graphs:
        graph = meta.graph_def
        functions = {f.signature.name: f for f in graph.library.function}
        signature_tensors = [
            t.name
            for sig in meta.signature_def.values()
            for t in (*sig.inputs.values(), *sig.outputs.values())
        ]
        served = _reach(graph, functions, signature_tensors)
        saver = meta.saver_def
        restore = _reach(graph, functions, [saver.restore_op_name])
        save = _reach(graph, functions, [saver.save_tensor_name])
        places = [(f"node:{n.name}", "the top-level graph", n) for n in graph.node]
        places += [
            (f"fn:{name}", f"function '{name}'", node)
            for name, f in functions.items()
            for node in f.node_def
        ]
        for key, where, node in places:
            if not DENIED.search(node.op):
                continue
            if key not in served and node.op in RESTORE_OPS:
                continue  # the saver reading the model's own variables
            if key not in served and key not in restore and key in save and node.op in SAVE_OPS:
                continue  # the saver's save function: never run when loading or predicting
            raise UserError(
                f"member '{who}': SavedModel '{path}' has the op '{node.op}' in {where}, which can "
                "run Python, touch files or talk to other processes, so tinyship does not load "
                "it. Export "
                "the model's inference function alone (tf.saved_model.save with a serving "
                "signature of plain tensor ops)."
            )


def _private_copy(path: Path, graph_bytes: bytes, into: Path) -> Path:
    """The folder TensorFlow loads: the checked graph bytes, the variables and assets copied."""
    target = into / "model"
    target.mkdir()
    (target / "saved_model.pb").write_bytes(graph_bytes)
    for sub in ("variables", "assets"):
        if (path / sub).is_dir():
            shutil.copytree(path / sub, target / sub, symlinks=False)
    return target


class SavedModelMember:
    """A TensorFlow SavedModel folder, called through one of its signatures.

    The signature must take one tensor ``[batch, ...]`` with a static per-row shape; rows
    are reshaped to it, and a channels-last image input ``[H, W, C]`` gets rows laid out
    ``[C, H, W]`` (the data's layout) transposed, as TensorFlow models expect.
    """

    kind = "savedmodel"

    def __init__(
        self,
        name: str,
        path: Path,
        output: str = "probs",
        signature: str | None = None,
        output_name: str | None = None,
    ) -> None:
        if output not in OUTPUTS:
            raise UserError(f"member '{name}': output must be one of {OUTPUTS}; got {output!r}.")
        self.name, self.path, self.output = name, Path(path), output
        self.signature = signature or "serving_default"
        graph_file = self.path / "saved_model.pb"
        if not graph_file.is_file():
            raise UserError(
                f"member '{name}': '{path}' is not a SavedModel folder (no saved_model.pb in it). "
                "Save the model with tf.saved_model.save(model, folder)."
            )
        if graph_file.stat().st_size > MAX_GRAPH_BYTES:
            raise UserError(f"member '{name}': '{graph_file}' is over {MAX_GRAPH_BYTES} bytes.")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before tensorflow is first imported
        tf = require("tensorflow", EXTRA, f"teacher member '{name}' (kind: savedmodel)")
        from tensorflow.core.protobuf import saved_model_pb2

        graph_bytes = graph_file.read_bytes()
        parsed = saved_model_pb2.SavedModel()
        try:
            parsed.ParseFromString(graph_bytes)
        except Exception as exc:
            raise UserError(
                f"member '{name}': '{graph_file}' is not a SavedModel graph ({type(exc).__name__})."
            ) from exc
        check_graph(parsed, self.path, name)
        self.framework = f"tensorflow {tf.__version__}"
        self._sha256 = hashlib.sha256(graph_bytes).hexdigest()
        with tempfile.TemporaryDirectory(prefix="tinyship-savedmodel-") as tmp:
            try:
                self.model = tf.saved_model.load(
                    str(_private_copy(self.path, graph_bytes, Path(tmp)))
                )
            except Exception as exc:
                raise UserError(
                    f"member '{name}': TensorFlow cannot load '{path}' ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0][:200] if str(exc) else ''})."
                ) from exc
        self._bind(tf, output_name)

    def _bind(self, tf: Any, output_name: str | None) -> None:
        """Pick the signature, its one input and the output that holds the predictions."""
        sigs = self.model.signatures
        if self.signature not in sigs:
            raise UserError(
                f"member '{self.name}': '{self.path}' has no signature '{self.signature}'; it has "
                f"{sorted(sigs)}. Set the member's 'signature' to one of them."
            )
        self.fn = sigs[self.signature]
        args, kwargs = self.fn.structured_input_signature
        if args or len(kwargs) != 1:
            raise UserError(
                f"member '{self.name}': signature '{self.signature}' takes inputs "
                f"{sorted(kwargs)}; a teacher member takes one tensor [batch, features...]."
            )
        ((self.input_key, spec),) = kwargs.items()
        shape = spec.shape.as_list()
        if len(shape) < 2 or not all(isinstance(s, int) for s in shape[1:]):
            raise UserError(
                f"member '{self.name}': input '{self.input_key}' has shape {shape}; the shape "
                "per row must be static (only the batch dimension may be None)."
            )
        self.input_shape = tuple(shape[1:])
        self.width = int(np.prod(self.input_shape))
        self.input_dtype = spec.dtype.as_numpy_dtype
        outputs = sorted(self.fn.structured_outputs)
        if output_name is None and len(outputs) != 1:
            raise UserError(
                f"member '{self.name}': signature '{self.signature}' has outputs {outputs}; set "
                "the member's 'output_name' to the one holding the probabilities or logits."
            )
        if output_name is not None and output_name not in outputs:
            raise UserError(
                f"member '{self.name}': output_name {output_name!r} is not an output of "
                f"signature '{self.signature}'; it has {outputs}."
            )
        self.output_name = output_name or outputs[0]
        self._tf = tf

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        x = check_inputs(x, f"member '{self.name}'", self.width)
        if len(self.input_shape) == 3:  # [H, W, C] from rows laid out [C, H, W]
            h, w, c = self.input_shape
            feed = x.reshape(len(x), c, h, w).transpose(0, 2, 3, 1)
        else:
            feed = x.reshape(len(x), *self.input_shape)
        try:
            out = self.fn(**{self.input_key: self._tf.constant(feed.astype(self.input_dtype))})
        except Exception as exc:
            raise UserError(
                f"member '{self.name}' (savedmodel) failed on inputs of shape {list(feed.shape)}: "
                f"{str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__}"
            ) from exc
        return as_probs(np.asarray(out[self.output_name]), self.output, self.name)

    def serialized_bytes(self) -> tuple[int, str]:
        files = [f for f in self.path.rglob("*") if f.is_file()]
        return sum(f.stat().st_size for f in files), "SavedModel folder size (all files)"

    def fingerprint(self) -> str:
        h = hashlib.sha256(b"savedmodel" + self._sha256.encode())
        for f in sorted(self.path.rglob("*")):
            if f.is_file() and f.name != "saved_model.pb":
                h.update(str(f.relative_to(self.path)).encode())
                h.update(hashlib.sha256(f.read_bytes()).digest())
        h.update(f"{self.signature}|{self.output_name}|{self.output}".encode())
        return h.hexdigest()
