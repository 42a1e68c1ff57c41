"""Teacher members of every kind, the ensemble's combine rules, and clear errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from distill.building import MEMBER_LOADERS, build_teacher, load_member
from distill.ensemble import Teacher
from distill.file_members import OnnxMember, PrecomputedMember
from distill.members import (
    KINDS,
    Pt2Member,
    PythonMember,
    SklearnMember,
    TorchMember,
)
from ground.errors import UserError


class Fixed:
    """A member returning fixed rows (for hand-computed combine checks)."""

    kind = "sklearn"

    def __init__(self, name: str, rows, width: int = 2) -> None:
        self.name, self.rows, self.width = name, np.asarray(rows, dtype=np.float64), width

    def predict_proba(self, x):
        return (
            np.repeat(self.rows[None, :], len(x), 0) if self.rows.ndim == 1 else self.rows[: len(x)]
        )

    def serialized_bytes(self):
        return 10, "fixed"


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread():
    """On the shared 2-core box, multi-threaded BLAS under load is 100x slower than one thread."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    return x[:900], d.target[:900], x[900:1100], d.target[900:1100]


@pytest.fixture(scope="module")
def models(digits):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    x, y, _, _ = digits
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)).eval()
    return {
        "rf": RandomForestClassifier(n_estimators=20, random_state=0).fit(x, y),
        "lr": LogisticRegression(max_iter=300).fit(x, y),
        "net": net,
    }


@pytest.fixture(scope="module")
def files(models, digits, tmp_path_factory):
    """One file per file-backed kind, written by the real libraries."""
    from skl2onnx import to_onnx

    root = tmp_path_factory.mktemp("members")
    _, _, xv, _ = digits
    for zipmap in (False, True):
        onx = to_onnx(models["rf"], xv[:1], options={"zipmap": zipmap}, target_opset=17)
        (root / f"rf{'_zipmap' if zipmap else ''}.onnx").write_bytes(onx.SerializeToString())
    net = models["net"]
    ep = torch.export.export(
        net, (torch.from_numpy(xv[:4]),), dynamic_shapes=({0: torch.export.Dim("batch")},)
    )
    torch.export.save(ep, str(root / "net.pt2"))
    torch.jit.save(torch.jit.trace(net, torch.from_numpy(xv[:4])), str(root / "net.ts"))
    (root / "lr.pkl").write_bytes(pickle.dumps(models["lr"]))
    np.save(root / "x.npy", xv)
    np.save(root / "rf_probs.npy", models["rf"].predict_proba(xv).astype(np.float32))
    (root / "bad.onnx").write_bytes(b"this is not a protobuf")
    return root


def keras_model(root):
    """A tiny Keras 3 classifier (torch backend) built here and saved as .keras."""
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    if not (root / "net.keras").exists():
        model.save(root / "net.keras")
    return keras.saving.load_model(root / "net.keras")


def savedmodel_of(net, root):
    """The torch MLP's weights as a TensorFlow SavedModel (skipped without the extra)."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tf = pytest.importorskip(
        "tensorflow", reason="tensorflow is not installed (tinyship[tensorflow])"
    )
    if (root / "net_sm").exists():
        return root / "net_sm"
    (w1, b1), (w2, b2) = [(m.weight.detach().numpy().T, m.bias.detach().numpy()) for m in net[::2]]

    class Mlp(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 64], tf.float32)])
        def serve(self, x):
            return {"logits": tf.matmul(tf.nn.relu(tf.matmul(x, w1) + b1), w2) + b2}

    model = Mlp()
    tf.saved_model.save(model, str(root / "net_sm"), signatures={"serving_default": model.serve})
    return root / "net_sm"


def softmax_net(net, x):
    with torch.no_grad():
        return torch.softmax(net(torch.from_numpy(x)), -1).numpy()


def member_case(kind: str, models, files) -> tuple:
    """(member built as a user would, the reference probabilities function)."""
    specs = {
        "onnx": ({"name": "m", "kind": "onnx", "path": "rf.onnx"}, models["rf"].predict_proba),
        "pt2": (
            {"name": "m", "kind": "pt2", "path": "net.pt2"},
            lambda x: softmax_net(models["net"], x),
        ),
        "torch": (
            {"name": "m", "kind": "torch", "path": "net.ts"},
            lambda x: softmax_net(models["net"], x),
        ),
        "precomputed": (
            {"name": "m", "kind": "precomputed", "inputs": "x.npy", "outputs": "rf_probs.npy"},
            models["rf"].predict_proba,
        ),
        "sklearn-pickle": (
            {"name": "m", "kind": "sklearn-pickle", "path": "lr.pkl"},
            models["lr"].predict_proba,
        ),
    }
    if kind == "sklearn":
        return SklearnMember("m", models["lr"]), models["lr"].predict_proba
    if kind == "python":  # any object with predict_proba, never pickled; fingerprint from a probe
        member = PythonMember(models["lr"], name="m")
        member.probe = np.zeros((4, 64), np.float32)
        return member, models["lr"].predict_proba
    if kind == "keras":
        model = keras_model(files)
        return load_member({"name": "m", "kind": "keras", "path": "net.keras"}, 0, files, 10), (
            lambda x: model.predict(x, verbose=0)
        )
    if kind == "savedmodel":
        savedmodel_of(models["net"], files)
        spec = {"name": "m", "kind": "savedmodel", "path": "net_sm", "output": "logits"}
        return load_member(spec, 0, files, 10), lambda x: softmax_net(models["net"], x)
    spec, ref = specs[kind]
    return load_member(spec, 0, files, 10, trust_pickles=True), ref


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_gives_the_models_probabilities(kind, models, files, digits):
    _, _, xv, _ = digits
    member, ref = member_case(kind, models, files)
    assert member.kind == kind
    teacher = Teacher([member], np.ones(1), num_classes=10)
    p = teacher.predict_proba(xv, batch_size=64)
    assert p.shape == (len(xv), 10) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(p, ref(xv), atol=1e-5)
    nbytes, how = member.serialized_bytes()
    assert nbytes > 100 and how
    assert len(teacher.fingerprint()) == 64


def test_onnx_random_forest_zipmap_output_is_handled(models, files, digits):
    _, _, xv, _ = digits
    m = OnnxMember("rfz", files / "rf_zipmap.onnx")
    np.testing.assert_allclose(m.predict_proba(xv), models["rf"].predict_proba(xv), atol=1e-5)


def test_pt2_member_matches_the_module_and_knows_its_width(models, files, digits):
    _, _, xv, _ = digits
    m = Pt2Member("net", files / "net.pt2")
    assert m.width == 64
    np.testing.assert_allclose(m.predict_proba(xv), softmax_net(models["net"], xv), atol=1e-6)
    with pytest.raises(UserError, match=r"member 'net' expects 64 features per row; got 63"):
        m.predict_proba(xv[:, :63])


def test_in_process_torch_member(models, digits):
    _, _, xv, _ = digits
    m = TorchMember("net", models["net"])
    np.testing.assert_allclose(m.predict_proba(xv), softmax_net(models["net"], xv), atol=1e-6)
    with pytest.raises(
        UserError, match=r"member 'net' \(torch\) failed on inputs of shape \[5, 60\]"
    ):
        m.predict_proba(xv[:5, :60])


def test_arithmetic_and_geometric_mean_on_hand_computed_numbers():
    a, b = Fixed("a", [0.9, 0.1]), Fixed("b", [0.5, 0.5])
    x = np.zeros((3, 2), np.float32)
    np.testing.assert_allclose(
        Teacher([a, b], np.ones(2), "mean").predict_proba(x)[0], [0.7, 0.3], atol=1e-6
    )
    # geometric: sqrt(.9*.5)=0.67082, sqrt(.1*.5)=0.22361 -> renormalized 0.75, 0.25
    np.testing.assert_allclose(
        Teacher([a, b], np.ones(2), "geometric").predict_proba(x)[0], [0.75, 0.25], atol=1e-6
    )
    np.testing.assert_allclose(
        Teacher([a, b], np.array([3.0, 1.0]), "weights").predict_proba(x)[0], [0.8, 0.2], atol=1e-6
    )
    # weighted geometric: .9^.75 .5^.25 = 0.7794, .1^.75 .5^.25 = 0.1495 -> 0.8391, 0.1609
    g = Teacher([a, b], np.array([3.0, 1.0]), "geometric").predict_proba(x)[0]
    np.testing.assert_allclose(
        g,
        [0.9**0.75 * 0.5**0.25, 0.1**0.75 * 0.5**0.25]
        / np.sum([0.9**0.75 * 0.5**0.25, 0.1**0.75 * 0.5**0.25]),
        atol=1e-6,
    )


def test_zero_weight_members_are_not_run():
    class Exploding(Fixed):
        def predict_proba(self, x):
            raise AssertionError("a member with weight 0 must not be evaluated")

    t = Teacher([Fixed("a", [0.9, 0.1]), Exploding("b", [0.5, 0.5])], np.array([1.0, 0.0]))
    np.testing.assert_allclose(t.predict_proba(np.zeros((2, 2)))[0], [0.9, 0.1], atol=1e-6)
    assert t.describe()["bytes"] == 10


def test_non_negative_rows_not_summing_to_one_are_refused_not_renormalized():
    t = Teacher([Fixed("votes", [3.0, 1.0])], np.ones(1))
    with pytest.raises(
        UserError, match=r"'votes' returned probabilities whose row 0 sums to 4.*'output: logits'"
    ):
        t.predict_proba(np.zeros((2, 2)))
    ok = Teacher([Fixed("close", [0.7500004, 0.25])], np.ones(1))  # float round-off is fine
    np.testing.assert_allclose(ok.predict_proba(np.zeros((2, 2)))[0], [0.75, 0.25], atol=1e-5)


def test_declared_outputs_are_checked_both_ways():
    from distill.members import as_probs

    probs = np.array([[0.9, 0.1], [0.2, 0.8]])
    with pytest.raises(
        UserError,
        match=r"'m' is declared 'output: logits' but .* already probabilities.*'output: probs'",
    ):
        as_probs(probs, "logits", "m")
    with pytest.raises(
        UserError, match=r"'m' is declared 'output: probs' but row 0 sums to 3.*'output: logits'"
    ):
        as_probs(np.array([[2.0, 1.0], [0.5, 0.5]]), "probs", "m")
    np.testing.assert_allclose(as_probs(np.log(probs), "logits", "m"), probs)
    np.testing.assert_allclose(as_probs(probs, "probs", "m"), probs)


@pytest.mark.parametrize(
    "rows, num_classes, match",
    [
        (
            [2.0, -1.0],
            None,
            r"member 'bad' returned negative values .* set the member's 'output: logits'",
        ),
        ([0.5, 0.5], 3, r"member 'bad' returned 2 classes; the data has 3"),
        ([np.nan, 1.0], None, r"member 'bad' returned NaN or infinite outputs"),
        ([0.0, 0.0], None, r"member 'bad' returned probabilities whose row 0 sums to 0"),
    ],
)
def test_bad_member_outputs_name_the_member(rows, num_classes, match):
    t = Teacher([Fixed("bad", rows)], np.ones(1), num_classes=num_classes)
    with pytest.raises(UserError, match=match):
        t.predict_proba(np.zeros((2, 2)))


def test_describe_and_fingerprint(models, files):
    a = SklearnMember("lr", models["lr"])
    b = OnnxMember("rf", files / "rf.onnx")
    t = Teacher([a, b], np.array([1.0, 3.0]), "mean")
    d = t.describe()
    assert [m["name"] for m in d["members"]] == ["lr", "rf"]
    assert d["members"][1] == {
        "name": "rf",
        "kind": "onnx",
        "weight": 0.75,
        "bytes": (files / "rf.onnx").stat().st_size,
        "bytes_method": "ONNX file size",
        "input": "raw",  # fed the rows as in the data file; the output used is named
        "output": "probs",
        "output_name": "probabilities",
    }
    assert d["bytes"] == sum(m["bytes"] for m in d["members"])
    assert t.fingerprint() == Teacher([a, b], np.array([1.0, 3.0]), "mean").fingerprint()
    assert t.fingerprint() != Teacher([a, b], np.array([1.0, 1.0]), "mean").fingerprint()
    assert t.fingerprint() != Teacher([a, b], np.array([1.0, 3.0]), "geometric").fingerprint()


def test_pickle_refused_without_trust_flag(files, digits):
    x, y, xv, yv = digits
    section = {"members": [{"name": "lr", "kind": "sklearn-pickle", "path": "lr.pkl"}]}
    with pytest.raises(
        UserError, match=r"member 'lr' is a pickled model .*runs arbitrary code.*--trust-pickles"
    ):
        build_teacher(section, x, y, xv, yv, seed=0, base_dir=files)
    t = build_teacher(section, x, y, xv, yv, seed=0, base_dir=files, trust_pickles=True)
    assert t.members[0].kind == "sklearn-pickle"
    t = build_teacher({**section, "trust_pickles": True}, x, y, xv, yv, seed=0, base_dir=files)
    assert t.predict_proba(xv).shape == (len(xv), 10)


def test_precomputed_member_refuses_rows_it_has_no_outputs_for(files, digits):
    _, _, xv, _ = digits
    m = PrecomputedMember("pre", files / "x.npy", files / "rf_probs.npy")
    p = m.predict_proba(xv[::-1][:50])  # any subset, any order
    np.testing.assert_allclose(p, np.load(files / "rf_probs.npy")[::-1][:50])
    munged = xv[:10] + 0.05
    with pytest.raises(
        UserError,
        match=r"precomputed member 'pre' has no outputs for 10 of 10 rows.*"
        r"MUNGE, RANDOM and NBE transfer sets and jitter create new rows, "
        r"which need a runnable member",
    ):
        m.predict_proba(munged)


def test_build_teacher_mixes_recipe_and_python_members(models, files, digits):
    x, y, xv, yv = digits
    section = {
        "members": [{"name": "rf", "kind": "onnx", "path": str(files / "rf.onnx")}],
        "combine": "weights",
        "weights": {"rf": 1, "lr": 1},
    }
    t = build_teacher(
        section,
        x,
        y,
        xv,
        yv,
        seed=0,
        base_dir=Path("/nonexistent"),
        members=[SklearnMember("lr", models["lr"])],
    )
    expected = (models["rf"].predict_proba(xv) + models["lr"].predict_proba(xv)) / 2
    np.testing.assert_allclose(t.predict_proba(xv), expected, atol=1e-5)
    assert t.describe()["combine"] == "weights"


def test_sklearn_member_missing_classes_are_placed_at_their_label(digits):
    from sklearn.linear_model import LogisticRegression

    x, y, xv, _ = digits
    keep = y != 3
    m = SklearnMember("no3", LogisticRegression(max_iter=200).fit(x[keep], y[keep]), num_classes=10)
    p = Teacher([m], np.ones(1), num_classes=10).predict_proba(xv)
    assert p.shape == (len(xv), 10) and np.all(p[:, 3] == 0)


@pytest.mark.parametrize(
    "section, match",
    [
        (
            {"members": [{"name": "m", "kind": "tensorflow", "path": "x"}]},
            r"teacher\.members\[0\]\.kind' must be one of onnx, pt2, torch, keras, savedmodel, "
            r"precomputed, sklearn-pickle; got 'tensorflow'",
        ),
        (
            {"members": [{"name": "m", "kind": "onnx", "path": "missing.onnx"}]},
            r"teacher\.members\[0\]\.path': file '.*missing\.onnx' not found",
        ),
        (
            {"members": [{"name": "m", "kind": "onnx"}]},
            r"teacher\.members\[0\]\.path' is required for kind 'onnx'",
        ),
        (
            {"members": [{"name": "m", "kind": "onnx", "path": "bad.onnx"}]},
            r"member 'm': '.*bad\.onnx' is not a valid ONNX model",
        ),
        (
            {"members": [{"name": "m", "kind": "pt2", "path": "bad.onnx"}]},
            r"'.*bad\.onnx' is not a readable torch\.export program",
        ),
        (
            {"members": [{"name": "m", "kind": "onnx", "path": "rf.onnx", "colour": 1}]},
            r"teacher\.members\[0\]\.colour' is not known",
        ),
        ({"combne": "mean"}, r"teacher\.combne' is not known\. Did you mean 'combine'"),
        (
            {"library": ["rf", "deep_forest"]},
            r"teacher\.library': unknown model\(s\) \['deep_forest'\]",
        ),
        (
            {"combine": "median"},
            r"teacher\.combine' must be one of 'mean', 'geometric', 'weights'; got 'median'",
        ),
        ({}, r"the teacher has no members"),
        (
            {"members": [{"name": "rf", "kind": "onnx", "path": "rf.onnx"}], "combine": "weights"},
            r"teacher\.weights' must give a weight for every member \['rf'\]; missing \['rf'\]",
        ),
    ],
)
def test_recipe_errors_name_the_key(section, match, files, digits):
    x, y, xv, yv = digits
    with pytest.raises(UserError, match=match):
        build_teacher(section, x, y, xv, yv, seed=0, base_dir=files)


def test_input_errors_name_the_value(files, digits):
    _, _, xv, _ = digits
    t = Teacher([OnnxMember("rf", files / "rf.onnx")], np.ones(1), num_classes=10)
    bad = xv[:4].copy()
    bad[2, 5] = np.nan
    with pytest.raises(UserError, match=r"NaN or infinite input at row 2, column 5"):
        t.predict_proba(bad)
    with pytest.raises(UserError, match=r"member 'rf' expects 64 features per row; got 65"):
        t.predict_proba(np.zeros((3, 65), np.float32))
    with pytest.raises(UserError, match=r"shape \[n, d\]; got an array of shape \(3, 1, 8, 8\)"):
        t.predict_proba(np.zeros((3, 1, 8, 8), np.float32))
    with pytest.raises(UserError, match=r"member names must be unique; \['rf'\]"):
        Teacher([OnnxMember("rf", files / "rf.onnx")] * 2, np.ones(2))


def test_every_recipe_kind_has_a_loader():
    assert set(MEMBER_LOADERS) == set(KINDS) - {"sklearn", "python"}  # API-only kinds


def test_image_teachers_get_rows_reshaped_to_their_input_shape(tmp_path, digits):
    """A CNN teacher (pt2, TorchScript, ONNX) labels flat model-ready rows [n, 64] as [n, 1, 8, 8]."""
    import onnx
    from onnx import TensorProto, helper

    _, _, xv, _ = digits
    torch.manual_seed(0)
    cnn = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 10)
    ).eval()
    img = torch.from_numpy(xv[:4]).reshape(4, 1, 8, 8)
    ep = torch.export.export(cnn, (img,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(ep, str(tmp_path / "cnn.pt2"))
    torch.jit.save(torch.jit.trace(cnn, img), str(tmp_path / "cnn.ts"))
    with torch.no_grad():
        ref = torch.softmax(cnn(torch.from_numpy(xv).reshape(-1, 1, 8, 8)), -1).numpy()
    pt2 = load_member({"name": "c", "kind": "pt2", "path": "cnn.pt2"}, 0, tmp_path)
    assert pt2.input_shape == (1, 8, 8) and pt2.width == 64
    np.testing.assert_allclose(pt2.predict_proba(xv), ref, atol=1e-5)
    ts_spec = {"name": "c", "kind": "torch", "path": "cnn.ts", "input_shape": [1, 8, 8]}
    with pytest.raises(UserError, match=r"member 'c' is a TorchScript archive .*--trust-pickles"):
        load_member(ts_spec, 0, tmp_path)
    ts = load_member(ts_spec, 0, tmp_path, trust_pickles=True)
    np.testing.assert_allclose(ts.predict_proba(xv), ref, atol=1e-5)
    # an ONNX graph taking [N, 1, 8, 8]: flatten, a fixed linear map, softmax
    w = np.random.default_rng(0).normal(size=(64, 10)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["x"], ["f"]),
            helper.make_node("MatMul", ["f", "w"], ["z"]),
            helper.make_node("Softmax", ["z"], ["p"], axis=1),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["N", 10])],
        [helper.make_tensor("w", TensorProto.FLOAT, [64, 10], w.ravel())],
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "img.onnx"
    )
    m = OnnxMember("img", tmp_path / "img.onnx")
    z = xv @ w
    expected = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(
        m.predict_proba(xv), expected / expected.sum(1, keepdims=True), atol=1e-5
    )
    with pytest.raises(UserError, match=r"member 'img' expects 64 features per row; got 60"):
        m.predict_proba(xv[:, :60])


def test_pt2_member_with_a_pickled_entry_is_refused_without_trust(tmp_path):
    """A crafted .pt2 teacher (pickled sample inputs) runs no code without --trust-pickles."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "tinyship"))
    from pt2_crafted import craft, plain_pt2

    marker = tmp_path / "marker"
    craft("sample_inputs", plain_pt2(tmp_path / "p.pt2"), tmp_path / "t.pt2", marker)
    with pytest.raises(
        UserError,
        match=r"member 't': '.*t.pt2' entry 'data/sample_inputs/model.pt' .*--trust-pickles",
    ):
        load_member({"name": "t", "kind": "pt2", "path": "t.pt2"}, 0, tmp_path)
    assert not marker.exists()
