"""Prompt features: whole-word keyword tests, the 44-vector layout, and the scaler saved with a model."""

import json

import numpy as np
import pytest

from router_core.features import (
    FEATURE_NAMES,
    N_NUMERIC,
    NUMERIC_FEATURES,
    RESPONSE_FEATURE_NAMES,
    PromptFeatureScaler,
    prompt_feature_matrix,
    prompt_features,
    response_features,
)


def named(prompt: str, history=()) -> dict[str, float]:
    return dict(zip(FEATURE_NAMES, prompt_features(prompt, history), strict=True))


def test_layout_is_26_numeric_then_18_boolean():
    assert len(FEATURE_NAMES) == 44 and N_NUMERIC == 26 and len(set(FEATURE_NAMES)) == 44
    assert prompt_features("hello").shape == (44,)


@pytest.mark.parametrize(
    ("prompt", "feature", "expected"),
    [
        ("Write a story", "is_follow_up", 0.0),  # the reference matched "it" inside "Write"
        ("Explain it again", "is_follow_up", 1.0),
        ("Summarise this text", "domain_casual", 0.0),  # "hi" inside "this"
        ("hi there", "domain_casual", 1 / 6),
        ("A mystery novel", "domain_personal", 0.0),  # "my" inside "mystery"
        ("Help with my taxes", "domain_personal", 1 / 6),
        ("thanks a lot", "politeness_density", 1 / len("thanks a lot")),  # "thank" + plural ending
        ("Fix my C++ code", "has_code_request", 1.0),
        ("Classify the cells", "has_code_request", 0.0),  # "class" is a word, not a prefix of "classify"
        ("Give me 3 reasons to stay", "expects_list", 1.0),
        ("Return it in format: yaml", "expects_json", 1.0),
        ("```print(1)```", "expects_code", 1.0),
        ("write a poem", "starts_with_verb", 1.0),
        ("writer's block", "starts_with_verb", 0.0),
        ("Is it true?", "is_question", 1.0),
    ],
)
def test_keywords_match_whole_words(prompt: str, feature: str, expected: float):
    assert named(prompt)[feature] == pytest.approx(expected)


def test_counts_and_densities():
    f = named("Hello world. How are you? (fine) [ok]", history=(("user", "abc"), ("assistant", "defgh")))
    assert f["char_count"] == len("Hello world. How are you? (fine) [ok]")
    assert f["word_count"] == 7
    assert f["sentence_count"] == 3
    assert f["question_density"] == pytest.approx(1 / 37)
    assert f["nesting_density"] == pytest.approx(2 / 37)
    assert f["turn_count"] == 2 and f["context_length"] == 8
    assert named("the the the")["itt_ratio"] == pytest.approx(1 - 1 / 3)


def test_empty_prompt_is_all_finite():
    assert np.isfinite(prompt_features("")).all()


def test_scaler_transforms_log_sparse_and_boolean_columns():
    prompts = ["short?", "a much longer prompt with more words in it", "why? why? why?", "plain text here"]
    raw = prompt_feature_matrix(prompts)
    scaled = PromptFeatureScaler().fit(raw).transform(raw)
    assert scaled.shape == (4, 44) and scaled.dtype == np.float32 and np.isfinite(scaled).all()
    names = [n for n, _ in NUMERIC_FEATURES]
    words = np.log(raw[:, names.index("word_count")])
    np.testing.assert_allclose(scaled[:, names.index("word_count")], (words - words.mean()) / words.std(), rtol=1e-5)
    question = scaled[:, names.index("question_density")]
    assert (question[[1, 3]] == -1.0).all() and (question[[0, 2]] > 0).all()  # zeros -> -1, others softplus(.) > 0
    np.testing.assert_array_equal(scaled[:, N_NUMERIC:], raw[:, N_NUMERIC:])


def test_feature_that_never_fires_gives_no_nan():
    raw = prompt_feature_matrix(["plain words", "more plain words"])
    scaler = PromptFeatureScaler().fit(raw)
    assert np.isfinite(scaler.mean_).all() and np.isfinite(scaler.std_).all()
    assert np.isfinite(scaler.transform(prompt_feature_matrix(["urgent! asap?"]))).all()


def test_scaler_is_reused_not_refitted_at_inference():
    train = prompt_feature_matrix(["one two three", "four five", "six"])
    scaler = PromptFeatureScaler().fit(train)
    restored = PromptFeatureScaler.from_json(json.loads(json.dumps(scaler.to_json())))
    new = prompt_feature_matrix(["an entirely different inference prompt with many many words"])
    np.testing.assert_array_equal(restored.transform(new), scaler.transform(new))
    assert not np.array_equal(restored.transform(new), PromptFeatureScaler().fit(new).transform(new))


def test_scaler_rejects_other_feature_sets():
    state = PromptFeatureScaler().fit(prompt_feature_matrix(["x"])).to_json()
    state["features"] = state["features"][:-1]
    with pytest.raises(ValueError, match="different feature set"):
        PromptFeatureScaler.from_json(state)


def test_response_features():
    f = dict(zip(RESPONSE_FEATURE_NAMES, response_features("Hi?", "One two.\n\n- a\n- b\n1. c\n```x```"), strict=True))
    assert f["paragraph_count"] == 2 and f["bullet_lines"] == 2 and f["numbered_lines"] == 1
    assert f["code_fences"] == 2 and f["word_ratio"] == 9  # 9 whitespace tokens / 1
    assert np.all(response_features("prompt", "") == 0)
