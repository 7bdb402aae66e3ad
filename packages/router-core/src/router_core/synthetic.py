"""Synthetic battles with planted prompt-dependent strengths, for tests and benchmarks of prompt-aware scorers.

Every prompt belongs to one topic and contains that topic's words; every model has a skill per topic; model A
beats model B with probability sigmoid(skill[A, topic] - skill[B, topic]). Skills are cyclic shifts, so every
model is best at something and all models have the same mean skill: a prompt-agnostic scorer cannot do much
better than chance, while the oracle (true skills) can.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from router_core.data.types import Battle

TOPIC_WORDS: dict[str, tuple[str, ...]] = {
    "code": ("python", "function", "compile", "bug", "variable", "loop", "class", "recursion"),
    "poetry": ("poem", "rhyme", "verse", "sonnet", "stanza", "metaphor", "haiku", "lyric"),
    "math": ("integral", "derivative", "equation", "matrix", "prime", "theorem", "algebra", "probability"),
    "cooking": ("recipe", "bake", "flour", "oven", "sauce", "garlic", "roast", "dough"),
    "travel": ("flight", "hotel", "itinerary", "passport", "beach", "museum", "visa", "luggage"),
}
_TEMPLATES = (
    "Can you help me with the {0} and the {1}?",
    "Explain the {0}, then tell me about {1}.",
    "I need advice on {0} and {1} for my project.",
    "Write something short about {0} using {1}.",
    "What is the best way to handle {0} when {1} is involved?",
)
_STYLES = ("Certainly! Here is", "Sure thing, so", "Well, let me think:", "In short,", "Great question. Basically",
           "Okay. To summarise,", "Hmm, I believe", "Answer:")  # fmt: skip


@dataclass(frozen=True)
class PlantedSkills:
    """Models with planted per-topic skills; `battles` draws votes from them."""

    models: tuple[str, ...]
    topics: tuple[str, ...]
    skill: np.ndarray  # (n_models, n_topics)

    @classmethod
    def cyclic(cls, n_models: int = 5, n_topics: int = 4, spread: float = 3.0) -> PlantedSkills:
        """skill[m, t] evenly spaced in [-spread/2, spread/2], shifted by one rank per topic."""
        if not 2 <= n_models <= len(_STYLES) or not 1 <= n_topics <= len(TOPIC_WORDS):
            raise ValueError(f"n_models must be 2..{len(_STYLES)} and n_topics 1..{len(TOPIC_WORDS)}")
        levels = np.linspace(-spread / 2, spread / 2, n_models)
        skill = np.array([[levels[(m + t) % n_models] for t in range(n_topics)] for m in range(n_models)])
        return cls(tuple(f"model-{m}" for m in range(n_models)), tuple(list(TOPIC_WORDS)[:n_topics]), skill)

    def prompt(self, topic: int, rng: np.random.Generator) -> str:
        """A prompt made of two words of `topic`."""
        first, second = rng.choice(TOPIC_WORDS[self.topics[topic]], size=2, replace=False)
        return _TEMPLATES[rng.integers(len(_TEMPLATES))].format(first, second)

    def battles(self, n: int, seed: int, tie_rate: float = 0.0) -> list[Battle]:
        """`n` battles; the topic is stored in `categories`, each model answers in its own style."""
        rng = np.random.default_rng(seed)
        records = []
        for i in range(n):
            topic = int(rng.integers(len(self.topics)))
            a, b = rng.choice(len(self.models), size=2, replace=False)
            p_a = 1.0 / (1.0 + np.exp(self.skill[b, topic] - self.skill[a, topic]))
            if rng.random() < tie_rate:
                winner = "tie"
            else:
                winner = "model_a" if rng.random() < p_a else "model_b"
            prompt = self.prompt(topic, rng)
            word = rng.choice(TOPIC_WORDS[self.topics[topic]])
            records.append(Battle(
                model_a=self.models[a], model_b=self.models[b], winner=winner, id=f"s{seed}-{i}", prompt=prompt,
                response_a=f"{_STYLES[a]} the {word} part is handled this way.",
                response_b=f"{_STYLES[b]} the {word} part is handled this way.",
                categories=(self.topics[topic],), source="synthetic",
            ))  # fmt: skip
        return records

    def oracle_scores(self, battles: list[Battle]) -> tuple[np.ndarray, np.ndarray]:
        """True skills of model A and model B in every battle, shape (n,) each."""
        index = {m: i for i, m in enumerate(self.models)}
        topic = {t: i for i, t in enumerate(self.topics)}
        rows = [topic[b.categories[0]] for b in battles]
        a = np.array([self.skill[index[b.model_a], t] for b, t in zip(battles, rows, strict=True)])
        b_ = np.array([self.skill[index[b.model_b], t] for b, t in zip(battles, rows, strict=True)])
        return a, b_


def best_prompt_agnostic_accuracy(battles: list[Battle]) -> float:
    """Upper bound of any prompt-agnostic scorer on these battles: every model pair predicted by its majority.

    Counted over decisive battles; no single score per model can beat predicting each pair's majority outcome.
    """
    wins: dict[tuple[str, str], list[int]] = {}
    for b in battles:
        if b.winner not in ("model_a", "model_b"):
            continue
        first, second = sorted((b.model_a, b.model_b))
        first_won = (b.winner == "model_a") == (b.model_a == first)
        wins.setdefault((first, second), [0, 0])[0 if first_won else 1] += 1
    total = sum(sum(c) for c in wins.values())
    return sum(max(c) for c in wins.values()) / total if total else float("nan")
