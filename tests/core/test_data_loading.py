"""Loaders on real rows of every supported schema, format detection, malformed rows and damaged files (also
fuzzed with hypothesis), offline HF, embedded sample."""

import gzip
import json
import logging
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router_core.data.files import columns_of, read_rows
from router_core.data.formats import detect_format
from router_core.data.loading import load_battles, load_dataset, load_embedded_sample, load_file
from router_core.errors import DataError
from router_core.specs.training import DataSpec
from tests.conftest import SHARED_DATA


@pytest.mark.parametrize(
    ("name", "fmt", "n"),
    [
        ("chatbot_arena_votes.jsonl", "votes", 60),
        ("lmarena_2024_categories.csv", "votes", 30),
        ("arena_140k.csv", "lmarena_140k", 6),
        ("chatbot_arena_conversations.parquet", "chatbot_arena", 4),
        ("kaggle_55k.csv", "kaggle_55k", 12),
        ("mt_bench_human/human_judgments_turn1.jsonl", "mt_bench_human", 25),
        ("mt_bench_battles_with_text.jsonl", "canonical", 25),
        ("canonical.jsonl", "canonical", 6),
    ],
)
def test_format_is_detected_and_every_row_loads(fixtures: Path, name: str, fmt: str, n: int):
    path = fixtures / name
    assert detect_format(columns_of(read_rows(path))) == fmt
    battles = load_file(path)
    assert len(battles) == n
    assert all(b.winner in ("model_a", "model_b", "tie", "both_bad") for b in battles)
    assert len(load_file(path, fmt)) == n  # an explicit format gives the same


def test_votes_rows(fixtures: Path):
    first = load_file(fixtures / "chatbot_arena_votes.jsonl")[0]
    assert (first.model_a, first.model_b, first.winner) == ("chatglm-6b", "koala-13b", "model_b")
    assert first.id == "58210e39b3fd4441a2bd4a518bb44c2d" and first.prompt is None
    cats = load_file(fixtures / "lmarena_2024_categories.csv")
    assert cats[0].categories == ("Creative Arts", "Fictional Story and Fanfiction Writing")
    assert cats[1].winner == "both_bad"  # "tie (bothbad)"


def test_arena_140k_rows(fixtures: Path):
    battles = load_file(fixtures / "arena_140k.csv")
    first = battles[0]
    assert first.prompt == "Compare Tormenta20 with DnD5e"
    assert first.response_a.startswith("Excellent question!") and first.response_b.startswith("# Tormenta20")
    assert first.language == "en" and first.timestamp.startswith("2025-05-29")
    assert "criteria:domain_knowledge" in first.categories and first.history == ()
    multi = battles[-1]
    assert len(multi.history) >= 2 and multi.history[0][0] == "user" and multi.history[1][0] == "assistant"


def test_chatbot_arena_rows(fixtures: Path):
    battles = load_file(fixtures / "chatbot_arena_conversations.parquet")
    assert battles[0].prompt == "Compare Tormenta20 with DnD5e" and battles[0].id == "q0"
    assert {b.winner for b in battles} <= {"model_a", "model_b", "tie", "both_bad"}


def test_kaggle_rows_keep_last_turn_and_history(fixtures: Path):
    first = load_file(fixtures / "kaggle_55k.csv")[0]
    assert first.prompt.startswith("OK, does pineapple belong on a pizza?")
    assert first.history[0] == ("user", "Is it morally right to try to have a certain percentage of females on managerial positions?")
    assert first.winner == "model_a" and first.id == "30192"


def test_mt_bench_votes_are_joined_with_questions_and_answers(fixtures: Path):
    votes = load_file(fixtures / "mt_bench_human" / "human_judgments_turn1.jsonl")
    with_text = load_file(fixtures / "mt_bench_battles_with_text.jsonl")
    assert len(votes) == len(with_text) == 25
    for joined, ready in zip(votes, with_text, strict=True):
        assert (joined.prompt, joined.response_a, joined.response_b) == (ready.prompt, ready.response_a, ready.response_b)
        assert joined.categories == ready.categories


def test_mt_bench_votes_without_side_files_load_without_text(tmp_path: Path, fixtures: Path, caplog):
    (tmp_path / "votes.jsonl").write_text((fixtures / "mt_bench_human" / "human_judgments_turn1.jsonl").read_text())
    with caplog.at_level(logging.WARNING):
        battles = load_file(tmp_path / "votes.jsonl")
    assert len(battles) == 25 and battles[0].prompt is None and "without text" in caplog.text


def test_malformed_rows_are_skipped_with_count_and_reasons(tmp_path: Path, caplog):
    path = tmp_path / "votes.jsonl"
    rows = [{"model_a": "x", "model_b": "y", "winner": "model_a"}, {"model_a": "x", "model_b": "y", "winner": "maybe"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n")
    with caplog.at_level(logging.WARNING):
        battles = load_file(path)
    assert len(battles) == 1
    assert "skipped 2 of 3" in caplog.text and "unknown winner 'maybe'" in caplog.text and "invalid JSON" in caplog.text


def test_file_where_nothing_parses_is_an_error(tmp_path: Path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"model_a": "x", "model_b": "y", "winner": "??"}) + "\n")
    with pytest.raises(DataError, match="none of 1 rows"):
        load_file(path)


def test_unknown_columns_and_missing_file_are_clear_errors(tmp_path: Path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="cannot tell the battle format"):
        load_file(path)
    with pytest.raises(DataError, match="not found"):
        load_file(tmp_path / "missing.jsonl")


def test_gzipped_jsonl_and_json_array(tmp_path: Path):
    rows = [{"model_a": "x", "model_b": "y", "winner": "tie"}]
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(json.dumps(rows[0]).encode()))
    (tmp_path / "b.json").write_text(json.dumps(rows))
    assert load_file(tmp_path / "a.jsonl.gz")[0].winner == "tie"
    assert load_file(tmp_path / "b.json")[0].winner == "tie"


def test_several_paths_concatenate(fixtures: Path):
    spec = DataSpec(path=[str(fixtures / "kaggle_55k.csv"), str(fixtures / "chatbot_arena_votes.jsonl")])
    assert len(load_battles(spec)) == 72


def test_hf_dataset_offline_fails_fast_naming_it():
    start = time.perf_counter()
    with pytest.raises(DataError, match="lmarena-ai/arena-human-preference-140k.*data.path"):
        load_dataset("lmarena_human_preference")
    assert time.perf_counter() - start < 30  # a generous bound: offline must never wait on the network


def test_embedded_sample_has_three_real_sources():
    battles = load_embedded_sample()
    by_source = {}
    for b in battles:
        by_source[b.source] = by_source.get(b.source, 0) + 1
    assert by_source == {"mt_bench_human": 1206, "kaggle_arena_55k_khaaliswooden": 999, "chatbot_arena_2023_votes": 21673}
    assert sum(b.prompt is not None for b in battles) == 1206 + 999


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"needs the full shared data files in {SHARED_DATA} (too large for the repo; tests/fixtures holds samples of each)")
def test_every_shared_battle_file_loads_with_detected_format():
    files = [p for p in SHARED_DATA.rglob("*") if p.suffix in (".jsonl", ".csv") and "copilot" not in p.name]
    files = [p for p in files if p.parent.name != "model_answer" and p.name != "question.jsonl"]
    assert len(files) >= 6
    for path in files:
        assert len(load_file(path)) > 90, path


# --- damaged data: a bad row is skipped and counted, a bad file is named ------------------------------------------

GOOD = {"model_a": "x", "model_b": "y", "winner": "model_a"}


def _jsonl(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        (b'{"model_a": "x", "model_b": "y", "winner": "model_a\xff"}', "not valid UTF-8"),
        (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
        (b"[1, 2, 3]", "not a JSON object"),
        (b"null", "not a JSON object"),
        (b'"text"', "not a JSON object"),
        (b"{not json", "invalid JSON"),
        (b'{"model_a": "x", "model_b": "x", "winner": "model_a"}', "self-battle"),
        (b'{"model_a": ["x"], "model_b": {"y": 1}, "winner": 3}', "unknown winner"),
    ],
)
def test_any_bad_jsonl_line_is_one_skipped_row(tmp_path: Path, caplog, bad_line: bytes, reason: str):
    good = json.dumps(GOOD).encode()
    path = _jsonl(tmp_path / "votes.jsonl", [good, bad_line, good])
    with caplog.at_level(logging.WARNING):
        assert len(load_file(path)) == 2
    assert "skipped 1 of 3 rows" in caplog.text and reason in caplog.text


def test_a_csv_record_with_extra_fields_is_one_skipped_row(tmp_path: Path, caplog):
    path = tmp_path / "votes.csv"
    lines = ["model_a,model_b,winner"] + ["x,y,model_a"] * 97 + ["x,y,model_b,extra,fields", "x,y,tie"]
    path.write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING):
        assert len(load_file(path)) == 98
    assert "skipped 1 of 99 rows" in caplog.text and "line 99: 5 fields where the header has 3" in caplog.text


def test_a_csv_record_with_non_utf8_bytes_is_one_skipped_row(tmp_path: Path, caplog):
    path = tmp_path / "votes.csv"
    path.write_bytes(b'model_a,model_b,winner\nx,y,model_a\nx\xff\xfe,y,model_b\n"x",y,tie\n')
    with caplog.at_level(logging.WARNING):
        battles = load_file(path)
    assert [b.winner for b in battles] == ["model_a", "tie"] and "line 3: not valid UTF-8" in caplog.text


def test_an_element_of_a_json_array_that_is_not_an_object_is_skipped(tmp_path: Path):
    path = tmp_path / "votes.json"
    path.write_text(json.dumps([GOOD, 3, None, ["a"], GOOD]))
    assert len(load_file(path)) == 2


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        # mtime 0: the header's timestamp is part of the test id, which every xdist worker must collect alike
        ("votes.jsonl.gz", gzip.compress(json.dumps(GOOD).encode() * 50, mtime=0)[:-30], "damaged or truncated gzip"),
        ("votes.jsonl.gz", b"this is not gzip at all", "damaged or truncated gzip"),
        ("votes.csv.gz", b"\x1f\x8b\x08\x00garbage", "damaged or truncated gzip"),
        ("votes.json", b'[{"model_a": "x"', "not a valid JSON array"),
        ("votes.json", b"[" * 200_000, "nested too deeply"),
        ("votes.json", b'[{"a": "\xff"}]', "not UTF-8"),
        ("votes.parquet", b"PAR1 not really", "cannot be read as parquet"),
        ("votes.csv", b"model_a,\xffmodel_b,winner\nx,y,tie\n", "header line is not UTF-8"),
    ],
)
def test_a_damaged_file_is_an_error_naming_it(tmp_path: Path, name: str, content: bytes, message: str):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as error:
        load_file(path)
    assert str(path) in str(error.value)


def test_self_battles_are_dropped_and_counted(tmp_path: Path, caplog):
    rows = [GOOD, {"model_a": "x", "model_b": "x", "winner": "model_a"}, {"model_a": "y", "model_b": "y", "winner": "tie"}]
    path = _jsonl(tmp_path / "votes.jsonl", [json.dumps(r).encode() for r in rows])
    with caplog.at_level(logging.WARNING):
        assert [(b.model_a, b.model_b) for b in load_file(path)] == [("x", "y")]
    assert "skipped 2 of 3 rows (2 self-battle (model_a == model_b)" in caplog.text


# --- fuzzing: whatever the bytes, the loaders raise nothing but DataError ------------------------------------------

FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    | st.sampled_from(["model_a", "model_b", "tie", "both_bad", "x", "y", "[]", "[[1, 2]]"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["model_a", "model_b", "winner", "prompt", "history", "categories",
                                       "conversation_a", "conversation_b", "content", "role", "turn",
                                       "question_id", "id", "winner_tie", "text", "type"]), children, max_size=6),
    max_leaves=12,
)  # fmt: skip
_near_battles = st.fixed_dictionaries(
    {"model_a": st.sampled_from(["x", "y"]) | _json_values, "model_b": st.sampled_from(["x", "y"]) | _json_values,
     "winner": st.sampled_from(["model_a", "tie (bothbad)", "B"]) | _json_values},
    optional={"conversation_a": _json_values, "conversation_b": _json_values, "prompt": _json_values,
              "history": _json_values, "categories": _json_values, "winner_model_a": _json_values,
              "winner_model_b": _json_values, "winner_tie": _json_values, "response_a": _json_values,
              "response_b": _json_values, "turn": _json_values, "question_id": _json_values},
)  # fmt: skip
_columns = st.sampled_from(["model_a", "model_b", "winner", "prompt", "history", "conversation_a", "conversation_b",
                            "winner_model_a", "winner_model_b", "winner_tie", "response_a", "response_b", "x"])  # fmt: skip


def _load_or_data_error(path: Path, fmt: str | None = None) -> None:
    try:
        battles = load_file(path, fmt)
    except DataError:
        return
    assert all(b.model_a != b.model_b for b in battles)


@FUZZ
@given(content=st.binary(max_size=300), suffix=st.sampled_from([".jsonl", ".json", ".csv", ".tsv", ".jsonl.gz", ".parquet"]))
def test_fuzz_random_bytes(tmp_path: Path, content: bytes, suffix: str):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(content)
    _load_or_data_error(path)


@FUZZ
@given(values=st.lists(_json_values | _near_battles, min_size=1, max_size=5),
       fmt=st.sampled_from([None, "votes", "lmarena_140k", "chatbot_arena", "kaggle_55k", "mt_bench_human"]))  # fmt: skip
def test_fuzz_random_json_values(tmp_path: Path, values: list, fmt: str | None):
    path = tmp_path / "fuzz.jsonl"
    path.write_text("\n".join(json.dumps(v) for v in values) + "\n")
    _load_or_data_error(path, fmt)
    array = tmp_path / "fuzz.json"
    array.write_text(json.dumps(values))
    _load_or_data_error(array, fmt)


@FUZZ
@given(header=st.lists(_columns, min_size=1, max_size=6, unique=True),
       records=st.lists(st.lists(st.text(max_size=12) | _columns | st.sampled_from(["model_a", "1", "0", "[]", '["a"]']),
                                 max_size=8), max_size=6))  # fmt: skip
def test_fuzz_random_csv_shapes(tmp_path: Path, header: list[str], records: list[list[str]]):
    import csv

    path = tmp_path / "fuzz.csv"
    with path.open("w", newline="", encoding="utf-8", errors="surrogatepass") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(records)
    _load_or_data_error(path)
