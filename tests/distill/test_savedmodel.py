"""``kind: savedmodel`` teacher members: TensorFlow SavedModels built here, checked op by op.

TensorFlow is the optional extra ``tinyship[tensorflow]``; ``make test-slow`` installs it and
runs the slow tests below. Without it, they skip and the missing-extra error is tested instead.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from distill.building import load_member
from distill.ensemble import Teacher
from ground.errors import UserError

NO_TF = "tensorflow is not installed: `make test-slow` installs the extra tinyship[tensorflow]"


@pytest.fixture(scope="module")
def tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return pytest.importorskip("tensorflow", reason=NO_TF)


def _save_linear(tf, path: Path, w: np.ndarray, b: np.ndarray, extra_op=None) -> None:
    """A SavedModel computing ``x @ w + b``: outputs 'logits' and 'probs' (softmax)."""

    class Linear(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(w.astype(np.float32))
            self.b = tf.Variable(b.astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, w.shape[0]], tf.float32)])
        def serve(self, x):
            z = tf.matmul(x, self.w) + self.b
            if extra_op is not None:
                z = extra_op(z)
            return {"logits": z, "probs": tf.nn.softmax(z)}

    model = Linear()
    tf.saved_model.save(model, str(path), signatures={"serving_default": model.serve})


def test_missing_tensorflow_names_the_extra(tmp_path):
    if importlib.util.find_spec("tensorflow") is not None:
        pytest.skip("tensorflow is installed; the slow tests below load real SavedModels")
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"")
    spec = {"name": "tfnet", "kind": "savedmodel", "path": "sm"}
    with pytest.raises(
        UserError,
        match=r"^teacher member 'tfnet' \(kind: savedmodel\) needs the "
        r"Python module 'tensorflow'.*pip install 'tinyship\[tensorflow\]'$",
    ):
        load_member(spec, 0, tmp_path)


@pytest.mark.slow
def test_savedmodel_logits_member_in_a_distill_run(tf, tmp_path):
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    from distill import run as distill

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order].astype(np.float32), y[order]
    x_train, y_train, x_test, y_test = x[:1300], y[:1300], x[1300:], y[1300:]
    np.savez(
        tmp_path / "digits.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test
    )
    lr = LogisticRegression(max_iter=2000).fit(x_train, y_train)  # on the raw pixels 0..16
    w, b = lr.coef_.T, lr.intercept_
    _save_linear(tf, tmp_path / "tfnet", w, b)
    own = float(((x_test @ w + b).argmax(1) == y_test).mean())

    recipe = {
        "data": {"name": "npz", "path": "digits.npz"},
        "teacher": {
            "members": [
                {
                    "name": "tfnet",
                    "kind": "savedmodel",
                    "path": "tfnet",
                    "output": "logits",
                    "output_name": "logits",
                }
            ]
        },
        "transfer": {"method": "munge", "size_multiplier": 4},
        "student": {"kind": "mlp", "hidden": [64]},
        "train": {"epochs": 20, "lr": 0.01, "batch_size": 128, "patience": 20, "baseline": False},
    }
    (tmp_path / "tf.yaml").write_text(yaml.safe_dump(recipe))
    res = distill(tmp_path / "tf.yaml", tmp_path / "run", progress=False)
    m = res.card["metrics"]["holdout"]
    print(
        f"savedmodel: own {own:.4f} teacher {m['teacher']['accuracy']:.4f} "
        f"student {m['student']['accuracy']:.4f}"
    )
    (member,) = res.card["teacher"]["members"]
    assert member["kind"] == "savedmodel" and member["framework"] == f"tensorflow {tf.__version__}"
    assert member["input"] == "raw" and member["output"] == "logits"
    assert member["output_name"] == "logits" and member["bytes"] > 0
    assert m["teacher"]["accuracy"] == pytest.approx(own, abs=1e-9)
    assert m["student"]["accuracy"] >= own - 0.03


@pytest.mark.slow
def test_savedmodel_outputs_and_signature_are_checked(tf, tmp_path):
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(5, 3)), rng.normal(size=3)
    _save_linear(tf, tmp_path / "lin", w, b)
    x = rng.normal(size=(7, 5)).astype(np.float32)
    spec = {"name": "lin", "kind": "savedmodel", "path": "lin"}
    with pytest.raises(
        UserError,
        match=r"has outputs \['logits', 'probs'\]; set the member's "
        r"'output_name'",
    ):
        load_member(spec, 0, tmp_path)
    with pytest.raises(
        UserError, match=r"has no signature 'predict'; it has \['serving_default'\]"
    ):
        load_member({**spec, "signature": "predict", "output_name": "probs"}, 0, tmp_path)
    probs = load_member({**spec, "output_name": "probs"}, 0, tmp_path)
    z = x @ w + b
    ref = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(probs.predict_proba(x), ref / ref.sum(1, keepdims=True), atol=1e-5)
    logits = load_member({**spec, "output_name": "logits"}, 0, tmp_path)  # declared probs
    with pytest.raises(
        UserError, match=r"member 'lin' returned negative values .*'output: logits'"
    ):
        Teacher([logits], np.ones(1), num_classes=3).predict_proba(x)
    with pytest.raises(UserError, match=r"member 'lin' expects 5 features per row; got 4"):
        probs.predict_proba(x[:, :4])


@pytest.mark.slow
def test_channels_last_savedmodel_gets_rows_transposed(tf, tmp_path):
    """Rows are laid out [C, H, W] (the data's layout); a TF image model takes [H, W, C]."""

    class ChannelMeans(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 2, 3, 4], tf.float32)])
        def serve(self, x):
            return {"logits": tf.reduce_mean(x, axis=[1, 2])}  # one logit per channel

    model = ChannelMeans()
    tf.saved_model.save(model, str(tmp_path / "img"), signatures={"serving_default": model.serve})
    member = load_member(
        {"name": "img", "kind": "savedmodel", "path": "img", "output": "logits"}, 0, tmp_path
    )
    x = np.random.default_rng(1).normal(size=(6, 4, 2, 3)).astype(np.float32)  # [n, C, H, W]
    z = x.mean(axis=(2, 3))
    ref = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(
        member.predict_proba(x.reshape(6, -1)), ref / ref.sum(1, keepdims=True), atol=1e-5
    )


@pytest.mark.slow
@pytest.mark.parametrize("op", ["WriteFile", "EagerPyFunc"])
def test_savedmodel_ops_that_touch_the_machine_are_refused(tf, tmp_path, op):
    victim = tmp_path / "written_by_the_model"

    def write(z):
        with tf.control_dependencies([tf.io.write_file(str(victim), "pwned")]):
            return tf.identity(z)

    def python(z):
        return tf.py_function(lambda t: t, [z], tf.float32)

    _save_linear(
        tf,
        tmp_path / "bad",
        np.eye(3),
        np.zeros(3),
        {"WriteFile": write, "EagerPyFunc": python}[op],
    )
    victim.unlink(missing_ok=True)  # tracing the function may have run it once
    spec = {"name": "bad", "kind": "savedmodel", "path": "bad", "output_name": "logits"}
    with pytest.raises(
        UserError,
        match=rf"^member 'bad': SavedModel .* has the op '{op}' in function '.*'.*does not load",
    ):
        load_member(spec, 0, tmp_path)
    assert not victim.exists()
