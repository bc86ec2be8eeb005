"""Attribute declaration and validation."""

from __future__ import annotations

import pytest

import tvmext
from tvmext.opdef.attrs import AttrSpec


def _compute(x, *, alpha: float = 1.0, n=2, flag=False, mode="fast", axes=(0, 1)):
    return x


def test_kinds_come_from_annotations_and_defaults():
    tensors, spec = AttrSpec.from_signature("t.a", _compute)
    assert tensors == ["x"]
    kinds = {a.name: a.kind for a in spec.attrs}
    assert kinds == {"alpha": float, "n": int, "flag": bool, "mode": str, "axes": (int,)}
    assert spec.bind({}) == {"alpha": 1.0, "n": 2, "flag": False, "mode": "fast", "axes": (0, 1)}


def test_values_are_normalized():
    _, spec = AttrSpec.from_signature("t.a", _compute)
    bound = spec.bind({"alpha": 3, "axes": [2, 3]})
    assert bound["alpha"] == 3.0 and isinstance(bound["alpha"], float)
    assert bound["axes"] == (2, 3)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("alpha", "big", "expects float"),
        ("n", 2.5, "expects int"),
        ("n", True, "expects int"),
        ("flag", 1, "expects bool"),
        ("mode", 3, "expects str"),
        ("axes", (1, 2.0), "expects tuple of ints"),
    ],
)
def test_wrong_type_names_op_and_attribute(name, value, expected):
    _, spec = AttrSpec.from_signature("t.a", _compute)
    with pytest.raises(tvmext.OpCallError, match=rf"op 't.a': attribute '{name}' {expected}"):
        spec.bind({name: value})


def test_unknown_attribute_lists_the_known_ones():
    _, spec = AttrSpec.from_signature("t.a", _compute)
    with pytest.raises(tvmext.OpCallError, match=r"unknown attribute\(s\) beta; expected alpha"):
        spec.bind({"beta": 1.0})


def test_declaration_errors():
    with pytest.raises(tvmext.OpDefinitionError, match="attribute 'k' needs a default"):
        AttrSpec.from_signature("t.b", lambda x, *, k: x)
    with pytest.raises(tvmext.OpDefinitionError, match="tensor parameter 'k' has a default"):
        AttrSpec.from_signature("t.b", lambda x, k=1: x)
    with pytest.raises(tvmext.OpDefinitionError, match=r"attribute 'k' needs a default of type"):
        AttrSpec.from_signature("t.b", lambda x, *, k=None: x)
    with pytest.raises(
        tvmext.OpDefinitionError, match=r"parameter 'xs' of kind variadic positional"
    ):
        AttrSpec.from_signature("t.b", lambda *xs: xs)


def test_attributes_round_trip_through_dict_attrs():
    _, spec = AttrSpec.from_signature("t.a", _compute)
    values = spec.bind({"alpha": 0.5, "n": -3, "flag": True, "mode": "slow", "axes": (4,)})
    assert spec.decode(spec.encode(values)) == values
