import pytest

from tinyship.errors import MissingDependencyError, UserError, require
from tinyship.recipe import Field, load_recipe, validate

FIELDS = {
    "arch": Field(str, "mlp", choices=("mlp", "cnn", "dscnn")),
    "epochs": Field(int, 10, min=1),
    "lr": Field(float, 1e-3, min=0.0),
    "hidden": Field(list, None),
    "data": Field(str, doc="dataset name"),
}


def test_defaults_filled_and_int_promoted_to_float():
    out = validate("student", {"data": "digits", "lr": 1}, FIELDS)
    assert out == {"arch": "mlp", "epochs": 10, "lr": 1.0, "hidden": None, "data": "digits"}


@pytest.mark.parametrize(
    "given, message",
    [
        (
            {"data": "d", "arch": "resnet"},
            r"'student.arch' must be one of 'mlp', 'cnn', 'dscnn'; got 'resnet'",
        ),
        ({"data": "d", "epochs": 0}, r"'student.epochs' must be in the range \[1, inf\]; got 0"),
        ({"data": "d", "epochs": "5"}, r"'student.epochs' must be int; got str '5'"),
        ({"data": "d", "epochs": True}, r"'student.epochs' must be int; got bool True"),
        ({"data": "d", "epoch": 5}, r"'student.epoch' is not known. Did you mean 'epochs'\?"),
        ({"data": "d", "lr": float("nan")}, r"'student.lr' must be a finite number"),
        ({}, r"'student.data' is required \(dataset name\)"),
    ],
)
def test_bad_values_name_key_value_and_allowed(given, message):
    with pytest.raises(UserError, match=message):
        validate("student", given, FIELDS)


def test_load_recipe_checks_sections(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("data: {name: digits}\nstudnet: {arch: mlp}\n")
    with pytest.raises(UserError, match="section 'studnet' .* Did you mean 'student'"):
        load_recipe(p)
    p.write_text("data: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_recipe(p)
    with pytest.raises(UserError, match="not found"):
        load_recipe(tmp_path / "nope.yaml")
    p.write_text("data: {name: digits}\n")
    assert load_recipe(p)["name"] == "r"


def test_missing_optional_dependency_names_the_extra():
    with pytest.raises(MissingDependencyError, match=r"pip install 'tinyship\[coreml\]'"):
        require("definitely_not_installed_module_xyz", "coreml", "Core ML export")
