"""Records validated on read (issue 38): one declared schema per run-directory record."""

from __future__ import annotations

import json

import pytest

from ground import rundir, schemas
from ground.errors import UserError

HEX = "a" * 64
CARD = {
    "schema": "tinyship.card/1",
    "run": "r",
    "input": {"name": "input", "shape": [1, 8, 8], "dtype": "float32", "layout": "NCHW"},
    "output": {"name": "logits", "kind": "logits", "num_classes": 10},
    "labels": [str(i) for i in range(10)],
    "metrics": {"holdout": {"n": 10, "student": {"accuracy": 0.9}, "members": {}}},
    "lineage": {"recipe": {"devices": {}}, "seed": 0},
    "sha256": {"student.pt2": HEX},
}
ART = {
    "file": "model.fp32.onnx",
    "format": "onnx",
    "precision": "fp32",
    "bytes": 10,
    "sha256": HEX,
    "input": {"shape": [1, 64], "dtype": "float32", "quantization": None},
    "parity": {
        "n": 10,
        "agreement": 1.0,
        "max_abs_prob_err": 0.0,
        "threshold": 0.99,
        "passed": True,
    },
    "accuracy": 0.9,
    "runtime": "onnxruntime 1.32.0",
    "runs_on": ["host"],
    "not_on": {"mcu": "no"},
}


def _write(tmp_path, rel, doc):
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def test_well_formed_records_pass(tmp_path):
    assert rundir.read_json(_write(tmp_path, rundir.CARD, CARD), "card") == CARD
    exports = {"card_sha256": HEX, "artifacts": [ART]}
    assert rundir.read_json(_write(tmp_path, rundir.EXPORTS, exports), "exports") == exports


@pytest.mark.parametrize(
    ("rel", "doc", "message"),
    [
        (rundir.CARD, {**CARD, "lineage": 1e308}, r"lineage is float 1e\+308; expected an object"),
        (rundir.CARD, {**CARD, "output": {"num_classes": 2.5}}, r"output.num_classes is float"),
        (rundir.CARD, {**CARD, "sha256": {"x": "../../etc"}}, r"sha256.x is str"),
        (rundir.CARD, {**CARD, "input": {"shape": [1, "a"]}}, r"input.shape\[1\] is str 'a'"),
        (
            rundir.EXPORTS,
            {"artifacts": [{**ART, "runtime": True}]},
            r"artifacts\[0\].runtime is bool True; expected a string or null",
        ),
        (rundir.EXPORTS, {"artifacts": [{**ART, "accuracy": [1, "a"]}]}, r"accuracy is list"),
        (rundir.EXPORTS, {"artifacts": [{**ART, "not_on": 1e308}]}, r"not_on is float 1e\+308"),
        (
            rundir.EXPORTS,
            {"artifacts": [{**ART, "input": {"quantization": True}}]},
            r"input.quantization is bool True",
        ),
        (rundir.EXPORTS, {"artifacts": [{**ART, "bytes": -1}]}, r"artifacts\[0\].bytes is int -1"),
        (
            rundir.EXPORTS,
            {"artifacts": [{"file": "x"}]},
            r"artifacts\[0\].format is missing \(a required key\)",
        ),
        (
            rundir.PROFILE,
            {
                "records": [
                    {
                        "artifact": "a",
                        "device": "d",
                        "verdict": "fits",
                        "reasons": [],
                        "budget": {"ram_kb": 1e308},
                    }
                ]
            },
            r"records\[0\].budget.ram_kb is float",
        ),  # fmt: skip
        (rundir.MANIFEST, {"files": [{"file": "a", "sha256": 5}]}, r"files\[0\].sha256 is int"),
    ],
)
def test_a_wrong_typed_field_is_a_user_error_naming_file_field_and_fix(tmp_path, rel, doc, message):
    path = _write(tmp_path, rel, doc)
    with pytest.raises(UserError, match=message) as exc:
        rundir.read_json(path, "the record")
    assert str(path) in str(exc.value) and f"--run {tmp_path} --force" in str(exc.value)


def test_a_number_json_cannot_hold_is_refused(tmp_path):
    path = tmp_path / rundir.EXPORTS
    path.parent.mkdir(parents=True)
    path.write_text(
        '{"artifacts": [{"file": "a", "format": "onnx", "precision": "fp32", "bytes": 1e999}]}'
    )
    with pytest.raises(UserError, match=r"artifacts\[0\].bytes is float inf"):
        rundir.read_json(path, "exports")


def test_other_json_files_are_not_validated(tmp_path):
    path = tmp_path / "search.json"
    path.write_text('{"artifacts": 5}')
    assert rundir.read_json(path, "search") == {"artifacts": 5}


def test_every_record_has_a_schema_and_a_command():
    assert set(schemas.SCHEMAS) == {rundir.CARD, rundir.EXPORTS, rundir.PROFILE, rundir.MANIFEST}
