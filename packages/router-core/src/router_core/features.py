"""Hand-made prompt features (44 per prompt) and the scaler fitted on training prompts and saved with a model.

The feature set follows the reference system (26 numeric, then 18 boolean), with keyword tests on whole words
instead of substrings ("this" no longer matches "hi", "Write" no longer matches "it"); see docs/features.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

import numpy as np

_DOMAINS: dict[str, tuple[str, ...]] = {
    "science": ("physics", "chemistry", "biology", "quantum", "molecule", "cell"),
    "medicine": ("medical", "health", "symptom", "disease", "treatment", "doctor"),
    "law": ("legal", "law", "court", "contract", "rights", "liability"),
    "finance": ("money", "invest", "stock", "finance", "bank", "economy"),
    "tech": ("software", "hardware", "api", "database", "server", "cloud"),
    "academic": ("research", "paper", "study", "hypothesis", "methodology"),
    "casual": ("hey", "hi", "thanks", "please", "help me", "can you"),
    "formal": ("hereby", "pursuant", "regarding", "therefore", "furthermore"),
    "philosophical": ("meaning", "existence", "consciousness", "ethics", "moral"),
    "historical": ("history", "century", "war", "ancient", "revolution"),
    "personal": ("my", "i am", "i have", "i want", "i need", "advice"),
    "business": ("company", "startup", "marketing", "revenue", "customer"),
}
_DENSITY_MARKERS: dict[str, tuple[str, ...]] = {
    "informal_density": ("lol", "btw", "idk", "gonna", "wanna", "u", "ur"),
    "specificity_density": ("exactly", "must", "should", "only", "limit", "maximum", "minimum"),
    "politeness_density": ("please", "thank", "could you", "would you", "kindly"),
    "urgency_density": ("urgent", "asap", "immediately", "quick", "fast", "now"),
}
_FLAG_KEYWORDS: dict[str, tuple[str, ...]] = {
    "has_code_request": ("code", "function", "implement", "debug", "python", "javascript", "java", "c++",
                         "algorithm", "class", "def", "import"),
    "has_math": ("calculate", "solve", "equation", "proof", "derive", "probability"),
    "has_creative_writing": ("write", "story", "poem", "creative", "imagine", "fiction"),
    "has_factual_query": ("what is", "who is", "when did", "where is", "explain", "define"),
    "has_instruction_following": ("step by step", "list", "summarize", "translate", "convert"),
    "has_roleplay": ("act as", "pretend", "roleplay", "you are a", "imagine you"),
    "has_analysis": ("compare", "analyze", "evaluate", "pros and cons", "difference"),
    "is_follow_up": ("that", "this", "it", "the above", "previous", "earlier", "you said"),
    "expects_table": ("table", "csv"),
    "expects_json": ("json", "format:"),
    "expects_code": ("```", "code", "script"),
    "expects_long_response": ("detailed", "comprehensive", "thorough", "in-depth"),
}
_LOG, _SPARSE = 1, 2
NUMERIC_FEATURES: tuple[tuple[str, int], ...] = (
    ("char_count", _LOG),
    ("word_count", _LOG),
    ("sentence_count", _LOG),
    ("itt_ratio", _SPARSE),
    ("avg_word_length", _LOG),
    ("question_density", _LOG | _SPARSE),
    ("nesting_density", _LOG | _SPARSE),
    ("multipart_density", _LOG | _SPARSE),
    *((f"domain_{name}", _LOG | _SPARSE) for name in _DOMAINS),
    *((name, _LOG | _SPARSE) for name in _DENSITY_MARKERS),
    ("turn_count", _LOG | _SPARSE),
    ("context_length", _LOG | _SPARSE),
)
"""Numeric features and their transform flags (log, sparse)."""
BOOLEAN_FEATURES: tuple[str, ...] = (
    "has_code_request", "has_code_block", "has_math", "has_numbers", "has_math_symbols", "has_creative_writing",
    "has_factual_query", "has_instruction_following", "has_roleplay", "has_analysis", "starts_with_verb",
    "is_question", "is_follow_up", "expects_list", "expects_table", "expects_json", "expects_code",
    "expects_long_response",
)  # fmt: skip
FEATURE_NAMES: tuple[str, ...] = tuple(n for n, _ in NUMERIC_FEATURES) + BOOLEAN_FEATURES
"""Names of the 44 features, in vector order."""
N_NUMERIC, N_FEATURES = len(NUMERIC_FEATURES), len(FEATURE_NAMES)

_SUFFIX = "(?:s|es|ed|ing)?"  # plural / verb endings of longer keywords ("thanks", "invests", "listing")
_SENTENCE_SPLIT = re.compile(r"[.!?]+")
_MULTIPART = re.compile(r"\d+\.|\band\b|\balso\b")
_LIST = re.compile(r"\b(?:list|bullet|enumerate)\w*|\b\d+ (?:things|ways|reasons)\b")
_VERB_START = re.compile(r"(?:write|create|make|give|tell|explain|show)\b")
_MATH_SYMBOLS = frozenset("+-*/=^√∫∑")


@cache
def _keyword_pattern(keyword: str) -> re.Pattern[str]:
    """Whole-word match of `keyword` (a phrase matches as a whole); letters at an edge need a word boundary."""
    body = re.escape(keyword)
    if keyword[-1].isalpha() and len(keyword) >= 4 and " " not in keyword:
        body += _SUFFIX
    left = r"(?<!\w)" if keyword[0].isalnum() else ""
    right = r"(?!\w)" if keyword[-1].isalnum() else ""
    return re.compile(left + body + right)


def _present(text: str, keywords: Iterable[str]) -> int:
    """How many of `keywords` occur in the lower-cased `text` as whole words."""
    return sum(1 for k in keywords if k in text and _keyword_pattern(k).search(text))


def prompt_features(prompt: str, history: Sequence[tuple[str, str]] = ()) -> np.ndarray:
    """The 44 raw (untransformed) features of one prompt, shape (44,), float64.

    Args:
        prompt: the user turn being answered.
        history: earlier turns as (role, text) pairs; only their count and total length are used.
    """
    text = prompt.lower()
    chars = max(len(prompt), 1)
    words = prompt.split()
    unique_words = {w.lower() for w in words}
    numeric = [
        len(prompt),
        len(words),
        sum(1 for piece in _SENTENCE_SPLIT.split(prompt) if piece.strip()),
        1.0 - len(unique_words) / len(words) if words else 0.0,
        sum(len(w) for w in words) / len(words) if words else 0.0,
        prompt.count("?") / chars,
        sum(prompt.count(c) for c in "([{") / chars,
        len(_MULTIPART.findall(text)) / chars,
        *(_present(text, kws) / len(kws) for kws in _DOMAINS.values()),
        *(_present(text, kws) / chars for kws in _DENSITY_MARKERS.values()),
        len(history),
        sum(len(turn_text) for _, turn_text in history),
    ]
    stripped = text.strip()
    flags = {name: _present(text, kws) > 0 for name, kws in _FLAG_KEYWORDS.items()}
    flags |= {
        "has_code_block": "`" in prompt,
        "has_numbers": any(c.isdigit() for c in prompt),
        "has_math_symbols": any(c in _MATH_SYMBOLS for c in prompt),
        "starts_with_verb": _VERB_START.match(stripped) is not None,
        "is_question": stripped.endswith("?"),
        "expects_list": _LIST.search(text) is not None,
    }
    return np.array(numeric + [float(flags[name]) for name in BOOLEAN_FEATURES], dtype=np.float64)


def prompt_feature_matrix(prompts: Sequence[str], histories: Sequence[Sequence[tuple[str, str]]] | None = None) -> np.ndarray:
    """Raw features of many prompts, shape (n_prompts, 44)."""
    if histories is None:
        histories = [()] * len(prompts)
    if not prompts:
        return np.zeros((0, N_FEATURES))
    return np.stack([prompt_features(p, h) for p, h in zip(prompts, histories, strict=True)])


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


class PromptFeatureScaler:
    """Transform of the 26 numeric features, fitted once on training prompts and reused at inference.

    log features: x -> ln(max(x, 1e-6)). Sparse features (mostly zero): mean and std come from the non-zero
    entries only; after scaling a zero becomes -1 and a non-zero value softplus(scaled) > 0. Other numeric
    features are standard-scaled. Boolean features pass through as 0/1. A std of 0, or a sparse feature that never
    fires in training, scales with mean 0 and std 1 instead of producing NaN.
    """

    def __init__(self, mean: np.ndarray | None = None, std: np.ndarray | None = None) -> None:
        self.mean_ = mean
        self.std_ = std

    @staticmethod
    def _logged(raw: np.ndarray) -> np.ndarray:
        out = raw[:, :N_NUMERIC].astype(np.float64, copy=True)
        for j, (_, flags) in enumerate(NUMERIC_FEATURES):
            if flags & _LOG:
                out[:, j] = np.log(np.maximum(out[:, j], 1e-6))
        return out

    def fit(self, raw: np.ndarray) -> PromptFeatureScaler:
        """Fit on raw features of shape (n_prompts, 44)."""
        logged = self._logged(raw)
        mean, std = np.zeros(N_NUMERIC), np.ones(N_NUMERIC)
        for j, (_, flags) in enumerate(NUMERIC_FEATURES):
            column = logged[raw[:, j] != 0, j] if flags & _SPARSE else logged[:, j]
            if column.size:
                mean[j] = column.mean()
                spread = column.std()
                std[j] = spread if spread > 1e-12 and math.isfinite(spread) else 1.0
        self.mean_, self.std_ = mean, std
        return self

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """Scaled features, shape (n_prompts, 44), float32."""
        if self.mean_ is None or self.std_ is None:
            raise RuntimeError("PromptFeatureScaler.transform called before fit")
        scaled = (self._logged(raw) - self.mean_) / self.std_
        for j, (_, flags) in enumerate(NUMERIC_FEATURES):
            if flags & _SPARSE:
                scaled[:, j] = np.where(raw[:, j] != 0, _softplus(scaled[:, j]), -1.0)
        return np.concatenate([scaled, raw[:, N_NUMERIC:]], axis=1).astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON state (saved with the model)."""
        if self.mean_ is None or self.std_ is None:
            raise RuntimeError("PromptFeatureScaler is not fitted")
        names = [n for n, _ in NUMERIC_FEATURES]
        return {"features": names, "mean": self.mean_.tolist(), "std": self.std_.tolist()}

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> PromptFeatureScaler:
        """Rebuild from `to_json`'s output; an error if the saved feature list differs from this version's."""
        if list(state["features"]) != [n for n, _ in NUMERIC_FEATURES]:
            raise ValueError("saved prompt-feature scaler was made for a different feature set")
        return cls(np.asarray(state["mean"], dtype=np.float64), np.asarray(state["std"], dtype=np.float64))


# Response features (used by the LLM-embedding stage): 29 text features of a (prompt, response) pair. The three
# embedding interactions (cosine, distance, dot product) are added by the caller, who has the embeddings.
RESPONSE_FEATURE_NAMES: tuple[str, ...] = (
    "char_ratio", "word_ratio", "chars_per_word",
    "type_token_ratio", "hapax_ratio", "word_length_mean", "word_length_std",
    "words_len_1_3", "words_len_4_6", "words_len_7_9", "words_len_10_plus",
    "uppercase_ratio", "digit_ratio", "whitespace_ratio",
    "sentence_count", "sentence_words_mean", "sentence_words_std", "sentence_words_max",
    "paragraph_count", "paragraph_chars_mean",
    "period_ratio", "comma_ratio", "question_ratio", "exclamation_ratio", "colon_ratio", "semicolon_ratio",
    "code_fences", "bullet_lines", "numbered_lines",
)  # fmt: skip
_BULLET = re.compile(r"^\s*[-*•]", re.MULTILINE)
_NUMBERED = re.compile(r"^\s*\d+\.", re.MULTILINE)
_PARAGRAPH = re.compile(r"\n\s*\n")


def response_features(prompt: str, response: str) -> np.ndarray:
    """The 29 text features of `response` as an answer to `prompt`, shape (29,), float64 (unscaled)."""
    words, prompt_words = response.split(), prompt.split()
    chars = len(response)
    ratios = [chars / max(len(prompt), 1), len(words) / max(len(prompt_words), 1), chars / max(len(words), 1)]
    if not words:
        lexical = [0.0] * 11
    else:
        lengths = np.array([len(w) for w in words], dtype=np.float64)
        counts: dict[str, int] = {}
        for w in words:
            counts[w.lower()] = counts.get(w.lower(), 0) + 1
        lexical = [
            len(counts) / len(words), sum(1 for c in counts.values() if c == 1) / len(words),
            lengths.mean(), lengths.std(),
            *(float(np.mean((lengths >= lo) & (lengths <= hi))) for lo, hi in ((1, 3), (4, 6), (7, 9), (10, 10**9))),
            sum(c.isupper() for c in response) / chars, sum(c.isdigit() for c in response) / chars,
            sum(c.isspace() for c in response) / chars,
        ]  # fmt: skip
    sentences = [len(s.split()) for s in _SENTENCE_SPLIT.split(response) if s.strip()] or [0]
    paragraphs = [p for p in _PARAGRAPH.split(response) if p.strip()]
    per_char = max(chars, 1)
    structural = [
        len(sentences) if response.strip() else 0, float(np.mean(sentences)), float(np.std(sentences)),
        max(sentences), len(paragraphs), float(np.mean([len(p) for p in paragraphs])) if paragraphs else 0.0,
        *(response.count(c) / per_char for c in ".,?!:;"),
        response.count("```"), len(_BULLET.findall(response)), len(_NUMBERED.findall(response)),
    ]  # fmt: skip
    return np.array(ratios + lexical + structural, dtype=np.float64)
