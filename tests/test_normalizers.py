"""Feature normalizers: one rule (ltrcompile.normalizers) for the ES frontend, the service and the IR.

The rule is the o19s plugin's (MinMaxFeatureNormDefinition: minimum and maximum >= 0, minimum <
maximum, defaults 0 and Float.MAX_VALUE; StandardFeatureNormDefinition: standard_deviation > 0, mean
defaults to 0). Before, the service's feature sets accepted ``minimum: -1`` that the ES frontend
refused for the same model; these tests pin that every reader now answers the same.
"""

from __future__ import annotations

import numpy as np
import pytest
from starlette.testclient import TestClient

from ltrcompile import normalizers
from ltrcompile.errors import IRValidationError, ModelFormatError
from ltrcompile.frontends import elasticsearch as es
from ltrcompile.rescore import FeatureSet, RescoreInputError
from ltrcompile.service.app import create_app

f32 = np.float32
NEG_MIN = {"year": {"min_max": {"minimum": -1, "maximum": 3}}}


def _model_doc(norms):
    return {"model": {"name": "m", "model": {"type": "model/linear", "definition": {"year": 1.0}, "feature_normalizers": norms}}}


def test_negative_minimum_refused_by_every_reader(tmp_path):
    """The drift case: the same feature_normalizers, one answer, one message."""
    with pytest.raises(ModelFormatError, match=r"0 <= minimum") as e1:
        es.from_object(_model_doc(NEG_MIN), feature_set=["year"])
    with pytest.raises(RescoreInputError, match=r"0 <= minimum") as e2:
        FeatureSet.from_dict({"name": "s", "features": ["year"], "feature_normalizers": NEG_MIN})
    assert "plugin rule" in str(e1.value) and "plugin rule" in str(e2.value)
    # the service's HTTP path (PUT /featuresets) and the plugin-compatible _ltr API
    with TestClient(create_app(str(tmp_path / "store"), "tok")) as c:
        h = {"Authorization": "Bearer tok"}
        r = c.put("/featuresets/s", json={"features": ["year"], "feature_normalizers": NEG_MIN}, headers=h)
        assert r.status_code in (400, 422), r.text
        assert "0 <= minimum" in r.text
        ok = {"features": ["year"], "feature_normalizers": {"year": {"min_max": {"minimum": 0, "maximum": 3}}}}
        assert c.put("/featuresets/s", json=ok, headers=h).status_code == 201


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"min_max": {"minimum": 3, "maximum": 1}}, "minimum < maximum"),
        ({"min_max": {"maximum": -2}}, "minimum < maximum"),
        ({"standard": {"mean": 1, "standard_deviation": 0}}, "positive"),
        ({"standard": {"mean": 1}}, "needs standard_deviation"),
        ({"zscore": {}}, "unknown normalizer type"),
        ({"standard": {"standard_deviation": 1}, "min_max": {}}, "exactly one"),
        ({"min_max": {"minimum": 0, "maximum": 1, "x": 2}}, "unknown min_max normalizer field"),
        ({"min_max": {"minimum": "abc"}}, "must be a number"),
        ({"min_max": {"maximum": 1e39}}, "finite"),
    ],
)
def test_plugin_rule(spec, match):
    with pytest.raises(normalizers.NormalizerError, match=match):
        normalizers.from_plugin(spec)
    with pytest.raises(RescoreInputError, match=match):  # the service says the same
        FeatureSet.from_dict({"name": "s", "features": ["a"], "feature_normalizers": {"a": spec}})


def test_plugin_defaults_and_float32_parsing():
    """Absent fields take the plugin's defaults; values are rounded once to float (declareFloat)."""
    assert normalizers.from_plugin({"min_max": {}}) == normalizers.Normalizer("min_max", 0.0, float(np.finfo(f32).max))
    assert normalizers.from_plugin({"standard": {"standard_deviation": 2}}).a == 0.0
    n = normalizers.from_plugin({"min_max": {"minimum": "0.1", "maximum": 10}})
    assert n.a == float(f32(0.1)) and n.to_plugin() == {"min_max": {"minimum": float(f32(0.1)), "maximum": 10.0}}
    # the service stores the plugin's full form back
    fs = FeatureSet.from_dict({"name": "s", "features": ["a"], "feature_normalizers": {"a": {"min_max": {"maximum": 4}}}})
    assert fs.to_dict()["feature_normalizers"] == {"a": {"min_max": {"minimum": 0.0, "maximum": 4.0}}}


def test_same_arithmetic_for_ir_and_feature_sets():
    """inputs (IR entries) and the service (feature sets) scale through the same function."""
    x = np.array([[1999.0, 7.7], [0.3, 0.1], [np.nan, np.nan]])
    ir = [{"feature": 0, "type": "standard", "mean": 1970.0, "std": 30.0},
          {"feature": 1, "type": "min_max", "min": float(f32(0.1)), "max": 10.0}]
    a = x.copy()
    normalizers.apply_ir(ir, a)
    fs = FeatureSet.from_dict({"name": "s", "features": ["y", "v"], "feature_normalizers": {
        "y": {"standard": {"mean": 1970, "standard_deviation": 30}},
        "v": {"min_max": {"minimum": 0.1, "maximum": 10}}}})
    b = x.copy()
    normalizers.apply_named(fs.parsed_normalizers, fs.index, b)
    np.testing.assert_array_equal(a, b)
    assert a[0, 0] == f32(f32(f32(1999.0) - f32(1970.0)) / f32(30.0))
    assert a[0, 1] == f32(f32(f32(7.7) - f32(0.1)) / f32(f32(10.0) - f32(0.1)))
    assert np.isnan(a[2]).all()


def test_ir_rule_is_the_arithmetic_only():
    """Built in Python, an IR normalizer may have a negative minimum (the arithmetic is defined);
    exporting it to the plugin refuses it with the plugin's reason."""
    from ltrcompile.errors import UnsupportedModelError
    from ltrcompile.exporters import export_model

    ens = es.from_object(_model_doc({"year": {"min_max": {"minimum": 0, "maximum": 3}}}), feature_set=["year"])
    ens.normalizers = [{"feature": 0, "type": "min_max", "min": -1.0, "max": 3.0, "missing_value": 0.0}]
    ens.validate()
    with pytest.raises(UnsupportedModelError, match="0 <= minimum"):
        export_model(ens, "o19s")
    for bad, match in [({"min": 3.0, "max": 3.0}, "minimum < maximum"), ({"feature": 2}, "outside")]:
        ens.normalizers = [{"feature": 0, "type": "min_max", "min": 0.0, "max": 3.0, **bad}]
        with pytest.raises(IRValidationError, match=match):
            ens.validate()
