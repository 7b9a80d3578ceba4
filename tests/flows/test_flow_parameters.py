"""The flows' parameters: the config models show as typed forms (Prefect's parameter schema),
while the settings users pass most stay top-level (`prefect deployment run -p epochs=5`)."""

from __future__ import annotations

import pytest
from prefect.utilities.callables import parameter_schema

from fer_core.config.prepare import PrepareOptions
from fer_core.config.train import TrainConfig


def _schema(flow) -> dict:
    return parameter_schema(flow.fn).model_dump()


def _model_of(schema: dict, name: str) -> dict:
    """The object schema a parameter ``name`` refers to (``X | None`` -> X's)."""
    prop = schema["properties"][name]
    ref = next(o["$ref"] for o in prop.get("anyOf", [prop]) if "$ref" in o)
    return schema["definitions"][ref.rsplit("/", 1)[-1]]


def test_pipeline_takes_typed_sections_and_keeps_the_common_settings_top_level():
    from flows.pipeline import pipeline

    schema = _schema(pipeline)
    for name in ("data", "out", "epochs", "model", "batch_size", "lr", "device", "seed"):
        assert name in schema["properties"], name
    assert {"type": "integer"} in schema["properties"]["epochs"]["anyOf"]
    train = _model_of(schema, "train")
    assert train["type"] == "object" and train["additionalProperties"] is False
    assert train["properties"]["label_smoothing"]["type"] == "number"
    assert train["properties"]["epochs"]["default"] == 30
    prepare = _model_of(schema, "prepare")
    assert prepare["type"] == "object"
    align = schema["definitions"]["AlignConfig"]
    assert align["properties"]["batch_size"] == {"default": 256, "title": "Batch Size",
                                                 "type": "integer"}
    assert set(align["properties"]["border"]["enum"]) == {"replicate", "constant", "reflect"}


@pytest.mark.parametrize(("entrypoint", "name", "model"), [
    ("flows.prepare:prepare", "options", "PrepareOptions"),
    ("flows.train:train", "options", "TrainConfig"),
    ("flows.audit:audit", "options", "AuditConfig")])
def test_each_flow_takes_its_config_as_a_typed_object(entrypoint, name, model):
    import importlib

    module, attr = entrypoint.split(":")
    schema = _schema(getattr(importlib.import_module(module), attr))
    assert _model_of(schema, name) == schema["definitions"][model]
    assert schema["definitions"][model]["type"] == "object"


def test_parameters_as_a_deployment_sends_them_become_the_models():
    """JSON values (what `prefect deployment run -p` and the UI send) are validated into the
    models; a top-level setting still wins over a section's, and a typo is refused."""
    from prefect.exceptions import ParameterTypeError

    from flows.pipeline import pipeline
    from flows.train import train_config

    params = pipeline.validate_parameters({
        "data": "d", "out": "o", "epochs": "5", "train": {"label_smoothing": 0.1, "epochs": 9},
        "prepare": {"align": {"batch_size": 6}}})
    assert isinstance(params["train"], TrainConfig) and params["epochs"] == 5
    assert isinstance(params["prepare"], PrepareOptions)
    assert params["prepare"].overrides() == {"align": {"batch_size": 6}}
    cfg = train_config(None, params["train"], epochs=params["epochs"])
    assert (cfg.epochs, cfg.label_smoothing, cfg.lr) == (5, 0.1, 1e-3)
    with pytest.raises(ParameterTypeError, match="label_smothing"):
        pipeline.validate_parameters({"data": "d", "out": "o",
                                      "train": {"label_smothing": 0.1}})


@pytest.mark.parametrize("entrypoint", ["flows/pipeline.py:pipeline", "flows/prepare.py:prepare",
                                        "flows/train.py:train", "flows/audit.py:audit"])
def test_prefect_deploy_sees_the_typed_parameters(entrypoint):
    """`prefect deploy` builds the schema from the entrypoint's source: the models are
    there too, so the UI's run form is typed."""
    from prefect.utilities.callables import parameter_schema_from_entrypoint

    schema = parameter_schema_from_entrypoint(entrypoint).model_dump()
    typed = [name for name, prop in schema["properties"].items()
             if any("$ref" in o for o in prop.get("anyOf", []))]
    assert typed and all(schema["definitions"][_model_of(schema, n)["title"]]["type"] == "object"
                         for n in typed), schema["properties"]
    if "epochs" in schema["properties"]:
        assert {"type": "integer"} in schema["properties"]["epochs"]["anyOf"]
