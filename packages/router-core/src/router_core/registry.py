"""model_type -> scorer class, as import paths resolved on demand (core never imports its siblings)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from router_core.errors import UserError

if TYPE_CHECKING:
    from router_core.scorer import Scorer

MODEL_TYPES: dict[str, str] = {
    "elo_scoring": "router_classic.elo_scoring:EloScorer",
    "least_squares_scoring": "router_classic.least_squares_scoring:LeastSquaresScorer",
    "greedy_ranking": "router_classic.greedy_ranking:GreedyRankingScorer",
    "mcmf_scoring": "router_classic.mcmf_scoring:McmfScorer",
    "bradley_terry_scoring": "router_classic.bradley_terry_scoring:BradleyTerryScorer",
    "gradient_boosting": "router_classic.gradient_boosting:GradientBoostingScorer",
    "dense_network": "router_neural.dense_network:DenseNetworkScorer",
    "dn_embedding": "router_neural.dn_embedding:DnEmbeddingScorer",
    "dn_embedding_length_prediction": "router_neural.dn_embedding_length_prediction:DnEmbeddingLengthPredictor",
    "simple_scoring": "router_neural.simple_scoring:SimpleScoringScorer",
    "transformer_embedding": "router_neural.transformer_embedding:TransformerEmbeddingScorer",
}
"""Every trainable model type and where its scorer (or, for `task = "length"` specs, its length predictor) lives;
kept equal to the spec union by a test."""

_PACKAGES = {"router_classic": "router-classic", "router_neural": "router-neural"}


def scorer_class(model_type: str) -> type[Scorer]:
    """Import and return the scorer class of `model_type`."""
    if model_type not in MODEL_TYPES:
        raise UserError(f"unknown model type {model_type!r}; known: {', '.join(sorted(MODEL_TYPES))}")
    return import_object(MODEL_TYPES[model_type], f"model type {model_type!r}")


def import_object(target: str, needed_for: str) -> Any:
    """The object at `target` ("module:name"); a `UserError` naming the package to install when it is missing."""
    module_name, _, name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        package = _PACKAGES.get(module_name.split(".")[0], module_name.split(".")[0])
        if error.name and module_name.startswith(error.name):
            raise UserError(f"{needed_for} needs the package {package}: install it") from error
        raise
    return getattr(module, name)
