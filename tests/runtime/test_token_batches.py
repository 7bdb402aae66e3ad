"""The exported encoder's batching: sorted prompts in runs bounded by a prompt count and a padded-token budget."""

from hypothesis import given
from hypothesis import strategies as st

from router_runtime.encoder import token_batches


def test_known_split() -> None:
    # 3 short ones fit 8 x 10 <= 100 tokens; 300-token ones exceed the budget alone, so each runs by itself
    assert token_batches([10, 10, 10, 300, 300], batch_size=8, max_tokens=100) == [range(0, 3), range(3, 4),
                                                                                  range(4, 5)]  # fmt: skip
    assert token_batches([5] * 10, batch_size=4, max_tokens=1000) == [range(0, 4), range(4, 8), range(8, 10)]
    assert token_batches([], batch_size=4, max_tokens=10) == []


@given(st.lists(st.integers(0, 300), max_size=60).map(sorted), st.integers(1, 20), st.integers(1, 3000))
def test_batches_cover_every_prompt_once_within_the_bounds(lengths: list[int], batch_size: int, max_tokens: int) -> None:
    batches = token_batches(lengths, batch_size, max_tokens)
    assert [i for b in batches for i in b] == list(range(len(lengths)))
    for b in batches:
        assert 1 <= len(b) <= batch_size
        padded = len(b) * max(lengths[b[-1]], 1)
        assert padded <= max_tokens or len(b) == 1
        if b.stop < len(lengths) and len(b) < batch_size:  # closed early only because the next one did not fit
            assert (len(b) + 1) * max(lengths[b.stop], 1) > max_tokens
