"""Training-spec validation: the seed document's shape, typo alias, ranges, unknown keys, readable errors."""

import logging

import pytest
from pydantic import ValidationError

from router_core.specs import EloScoringSpec, TrainingSpec, parse_training_spec
from router_core.specs.errors import format_validation_error


def _spec(**overrides):
    doc = {"model": {"name": "m", "spec": {"model_type": "elo_scoring"}}, "data": {"dataset": "arena_sample"},
           "epochs": 1, "batch_size": 8}
    doc.update(overrides)
    return doc


def _errors(doc) -> str:
    with pytest.raises(ValidationError) as info:
        parse_training_spec(doc)
    return format_validation_error(info.value)


def test_minimal_spec_gets_defaults():
    spec = parse_training_spec(_spec())
    assert isinstance(spec.model.spec, EloScoringSpec)
    assert spec.model.spec.k_factor == 32 and spec.model.spec.min_model_occurrences == 1000
    assert spec.data.validation_split == 0.2 and spec.data.seed == 42 and spec.log.print_every == 1


def test_seed_typo_valiation_split_is_accepted_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        spec = parse_training_spec(_spec(data={"dataset": "arena_sample", "valiation_split": 0.15, "seed": 3}))
    assert spec.data.validation_split == 0.15
    assert "valiation_split" in caplog.text


def test_typo_and_correct_spelling_together_is_an_error():
    assert "not both" in _errors(_spec(data={"valiation_split": 0.1, "validation_split": 0.2}))


@pytest.mark.parametrize(
    ("doc_patch", "expected"),
    [
        ({"data": {"validation_split": 1.5}}, "data.validation_split: Input should be less than 1 (got 1.5)"),
        ({"data": {"validation_split": -0.1}}, "data.validation_split"),
        ({"epochs": -1}, "epochs: Input should be greater than or equal to 0"),
        ({"batch_size": 0}, "batch_size"),
        ({"data": {"max_samples": 0}}, "data.max_samples"),
        ({"surprise": 1}, "surprise: unknown key"),
        ({"model": {"name": "m", "spec": {"model_type": "elo_scoring", "k_facter": 3}}}, "model.spec.k_facter: unknown key"),
        ({"model": {"spec": {"model_type": "elo_scoring"}}}, "model.name: Field required"),
        ({"model": {"name": "m", "spec": {"model_type": "nope"}}}, "model.spec"),
        ({"model": {"name": "m"}}, "give model.spec (a new model) or model.start_state"),
        ({"model": {"name": "../evil", "spec": {"model_type": "elo_scoring"}}}, "model.name"),
        ({"data": {"dataset": "arena_sample", "path": "x.jsonl"}}, "not both"),
        ({"data": {"format": "votes"}}, "data.format applies to files"),
        ({"model": {"name": "m", "spec": {"model_type": "elo_scoring"}}, "epochs": 0}, "epochs must be at least 1"),
    ],
)
def test_invalid_specs_name_the_field(doc_patch, expected):
    assert expected in _errors(_spec(**doc_patch))


def test_path_may_be_one_file_or_a_list():
    one = parse_training_spec(_spec(data={"path": "a.jsonl"}))
    many = parse_training_spec(_spec(data={"path": ["a.jsonl", "b.csv"], "format": "auto"}))
    assert one.data.paths == ["a.jsonl"] and many.data.paths == ["a.jsonl", "b.csv"]
    assert "data.path" in _errors(_spec(data={"path": []}))


def test_wandb_block_and_schema_key_are_accepted():
    doc = _spec(wandb={"project": "p", "experiment_name": "e", "config_name": "c", "artifact_name": "a"})
    doc["$schema"] = "./schema.json"
    spec = parse_training_spec(doc)
    assert spec.wandb is not None and spec.wandb.project == "p"


def test_specs_are_frozen():
    spec = parse_training_spec(_spec())
    with pytest.raises(ValidationError):
        setattr(spec, "epochs", 3)  # what `spec.epochs = 3` does, which a type checker would reject


def test_schema_describes_fields_from_docstrings():
    schema = TrainingSpec.model_json_schema(by_alias=True)
    elo = schema["$defs"]["EloScoringSpec"]["properties"]
    assert "K" in elo["k_factor"]["description"]


def test_start_state_with_a_spec_ignores_the_spec_with_a_warning(caplog):
    doc = _spec(model={"name": "m", "start_state": "elo_scoring/old", "spec": {"model_type": "dense_network"}})
    spec = parse_training_spec(doc)
    assert spec.model.spec is None and spec.model.start_state == "elo_scoring/old"
    assert "model.spec (dense_network) is ignored" in caplog.text


def test_rare_model_threshold_has_one_name_inside_and_two_in_json():
    for key in ("min_model_occurrences", "min_model_comparisons"):
        doc = _spec(model={"name": "m", "spec": {"model_type": "elo_scoring", key: 7}})
        assert parse_training_spec(doc).model.spec.min_model_occurrences == 7
    assert "min_model_occurences: unknown key" in _errors(
        _spec(model={"name": "m", "spec": {"model_type": "elo_scoring", "min_model_occurences": 7}}))
