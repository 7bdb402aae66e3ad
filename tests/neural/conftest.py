"""Planted-skill battles shared by the neural tests (session-scoped: generating them is cheap, embedding is not)."""

import pytest

from router_core.synthetic import PlantedSkills

TINY_EMBEDDING = {"embedding_type": "attention", "h_emb": 32, "h_scalar": 8, "h_pair": 32, "d_out": 16,
                  "num_attention_heads": 2, "pairs_per_model": 16, "models_per_batch": 5, "embeddings_per_model": 2,
                  "optimizer": {"optimizer_type": "adamw", "learning_rate": 0.003}}


@pytest.fixture(scope="session")
def planted():
    """A world of 5 models x 4 topics and its train / validation / test battles."""
    world = PlantedSkills.cyclic(n_models=5, n_topics=4)
    return world, world.battles(3000, seed=0), world.battles(300, seed=1), world.battles(1000, seed=2)
