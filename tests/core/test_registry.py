"""The registry and the spec union stay in step; every entry resolves to a scorer of the right spec type."""

import pytest

from router_core.errors import UserError
from router_core.registry import MODEL_TYPES, scorer_class
from router_core.specs import MODEL_SPECS


def test_registry_keys_equal_spec_union_tags():
    assert set(MODEL_TYPES) == set(MODEL_SPECS)


@pytest.mark.parametrize("model_type", sorted(MODEL_TYPES))
def test_entry_resolves_to_matching_scorer(model_type: str):
    cls = scorer_class(model_type)
    assert cls.spec_type is MODEL_SPECS[model_type]
    predict = "predict_lengths" if MODEL_SPECS[model_type].task == "length" else "score"
    for method in ("fit", predict, "save", "load"):
        assert callable(getattr(cls, method)), f"{cls.__name__} lacks {method}"
    assert isinstance(getattr(cls, "known_models", None), property)


def test_unknown_model_type_is_a_user_error():
    with pytest.raises(UserError, match="unknown model type"):
        scorer_class("no_such_model")
