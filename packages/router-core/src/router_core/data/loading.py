"""Turning a `DataSpec` (dataset name or local files) into canonical `Battle` records.

This module is the only place that reads battle data; scorers never see paths or dataset names.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

from router_core.data.files import BAD_ROW, bad_row, columns_of, read_rows
from router_core.data.formats import FORMAT_PARSERS, Parser, detect_format
from router_core.data.hf import load_hf_rows
from router_core.data.types import Battle
from router_core.errors import DataError
from router_core.scorer import progress_bar
from router_core.specs.training import DataSpec

log = logging.getLogger(__name__)

HF_DATASETS = {
    "lmarena_human_preference": ("lmarena-ai/arena-human-preference-140k", "lmarena_140k"),
    "chatbot_arena": ("lmsys/chatbot_arena_conversations", "chatbot_arena"),
}
EMBEDDED_SAMPLE = "arena_sample.jsonl.gz"


def load_battles(spec: DataSpec) -> list[Battle]:
    """All battles the spec names, in source order (files in the order given)."""
    if spec.paths:
        battles: list[Battle] = []
        for path in spec.paths:
            battles += load_file(Path(path), spec.format)
        return battles
    return load_dataset(spec.dataset)


def load_dataset(name: str) -> list[Battle]:
    """A named dataset: `arena_sample` (bundled), an HF dataset, or `both` HF datasets."""
    if name == "arena_sample":
        return load_embedded_sample()
    if name == "both":
        return load_dataset("lmarena_human_preference") + load_dataset("chatbot_arena")
    hub_name, fmt = HF_DATASETS[name]
    return parse_rows(load_hf_rows(hub_name), FORMAT_PARSERS[fmt], source=hub_name)


def load_embedded_sample() -> list[Battle]:
    """The real battles bundled with router-core (see the NOTICE next to the file)."""
    with resources.as_file(resources.files("router_core.data.embedded") / EMBEDDED_SAMPLE) as path:
        return parse_rows(read_rows(path), FORMAT_PARSERS["canonical"], source="arena_sample")


def load_file(path: Path, fmt: str | None = None) -> list[Battle]:
    """One local file, its schema given or detected from its columns."""
    rows = read_rows(path)
    if not rows:
        raise DataError(f"{path}: the file holds no rows")
    if fmt in (None, "auto"):
        fmt = detect_format(columns_of(rows))
        if fmt is None:
            cols = ", ".join(sorted(columns_of(rows))[:12])
            raise DataError(f"{path}: cannot tell the battle format from its columns ({cols}); set data.format")
        log.info("%s: detected format %s", path, fmt)
    if fmt == "mt_bench_human":
        rows = join_mt_bench(rows, path.parent)
    return parse_rows(rows, FORMAT_PARSERS[fmt], source=path.name)


ROW_ERRORS = (ValueError, TypeError, LookupError, ArithmeticError, AttributeError, SyntaxError, RecursionError)
"""What a parser may raise for a row it cannot use (a bad value of any shape); the row is skipped and counted."""
_WHERE = re.compile(r"^(line|item) \d+: ")


def parse_rows(rows: list[dict[str, Any]], parser: Parser, source: str) -> list[Battle]:
    """Parse every row, skipping (and counting, by reason) the ones that fail; an error if none parses."""
    battles: list[Battle] = []
    reasons: Counter[str] = Counter()
    examples: list[str] = []
    for number, row in enumerate(progress_bar(rows, f"reading {source}", unit=" rows"), start=1):
        try:
            if BAD_ROW in row:
                raise ValueError(row[BAD_ROW])
            battles.append(parser(row, source))
        except ROW_ERRORS as error:
            reason = (str(error) or type(error).__name__)[:200]
            reasons[_WHERE.sub("", reason)] += 1
            if len(examples) < 3:
                examples.append(reason if _WHERE.match(reason) else f"row {number}: {reason}")
    if not battles:
        raise DataError(f"{source}: none of {len(rows)} rows could be read as a battle ({'; '.join(examples)})")
    if reasons:
        summary = ", ".join(f"{count} {reason}" for reason, count in reasons.most_common(3))
        log.warning("%s: skipped %d of %d rows (%s; first: %s)", source, reasons.total(), len(rows), summary,
                    "; ".join(examples))  # fmt: skip
    return battles


def join_mt_bench(votes: list[dict[str, Any]], folder: Path) -> list[dict[str, Any]]:
    """Attach prompt and answers to MT-Bench human votes from `question.jsonl` and `model_answer/<model>.jsonl`."""
    question_file, answer_dir = folder / "question.jsonl", folder / "model_answer"
    if not question_file.is_file() or not answer_dir.is_dir():
        log.warning("%s: no question.jsonl / model_answer/ beside the votes; loading them without text", folder)
        return votes
    questions = {q.get("question_id"): q for q in _jsonl(question_file)}
    answers = {}
    for file in sorted(answer_dir.glob("*.jsonl")):
        for answer in _jsonl(file):
            try:
                answers[(answer.get("model_id") or file.stem, answer["question_id"])] = answer["choices"][0]["turns"]
            except ROW_ERRORS:
                continue  # an answer without turns: the votes on it load without that response text
    joined = []
    for vote in votes:
        try:
            joined.append(_joined_vote(vote, questions, answers))
        except ROW_ERRORS as error:
            joined.append(bad_row(f"cannot join the vote with its question and answers ({error})"))
    return joined


def _joined_vote(vote: dict[str, Any], questions: dict[Any, Any], answers: dict[Any, Any]) -> dict[str, Any]:
    if BAD_ROW in vote:
        return vote
    question = questions.get(vote.get("question_id"), {})
    turn = int(vote.get("turn", 1)) - 1
    if turn < 0:
        raise ValueError(f"turn {turn + 1} is not a positive turn number")
    row = dict(vote)
    row["id"] = f"{vote.get('question_id')}:{vote.get('judge')}:{vote.get('model_a')}:{vote.get('model_b')}"
    row["category"] = question.get("category")
    turns = question.get("turns") or []
    row["prompt"] = turns[turn] if turn < len(turns) else None
    for side in ("a", "b"):
        model_turns = answers.get((vote.get(f"model_{side}"), vote.get("question_id"))) or []
        row[f"response_{side}"] = model_turns[turn] if turn < len(model_turns) else None
    return row


def _jsonl(path: Path) -> list[dict[str, Any]]:
    """The well-formed objects of a side file (question.jsonl, model_answer/*.jsonl); damaged lines are left out."""
    return [row for row in read_rows(path) if BAD_ROW not in row]
