"""Turning a `DataSpec` (dataset name or local files) into canonical `Battle` records.

This module is the only place that reads battle data; scorers never see paths or dataset names.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

from router_core.data.files import BAD_JSON, columns_of, read_rows
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


def parse_rows(rows: list[dict[str, Any]], parser: Parser, source: str) -> list[Battle]:
    """Parse every row, skipping (and counting) the ones that fail; an error if none parses."""
    battles: list[Battle] = []
    reasons: Counter[str] = Counter()
    examples: list[str] = []
    for number, row in enumerate(progress_bar(rows, f"reading {source}", unit=" rows"), start=1):
        try:
            if BAD_JSON in row:
                raise ValueError(row[BAD_JSON])
            battles.append(parser(row, source))
        except (ValueError, TypeError, KeyError, SyntaxError, AttributeError) as error:
            reason = str(error) or type(error).__name__
            reasons[reason.split(":")[0] if reason.startswith("line ") else reason] += 1
            if len(examples) < 3:
                examples.append(f"row {number}: {reason}")
    skipped = sum(reasons.values())
    if not battles:
        raise DataError(f"{source}: none of {len(rows)} rows could be read as a battle ({'; '.join(examples)})")
    if skipped:
        log.warning("%s: skipped %d of %d malformed rows (%s)", source, skipped, len(rows), "; ".join(examples))
    return battles


def join_mt_bench(votes: list[dict[str, Any]], folder: Path) -> list[dict[str, Any]]:
    """Attach prompt and answers to MT-Bench human votes from `question.jsonl` and `model_answer/<model>.jsonl`."""
    question_file, answer_dir = folder / "question.jsonl", folder / "model_answer"
    if not question_file.is_file() or not answer_dir.is_dir():
        log.warning("%s: no question.jsonl / model_answer/ beside the votes; loading them without text", folder)
        return votes
    questions = {q["question_id"]: q for q in _jsonl(question_file)}
    answers = {
        (a.get("model_id") or f.stem, a["question_id"]): a["choices"][0]["turns"]
        for f in sorted(answer_dir.glob("*.jsonl"))
        for a in _jsonl(f)
    }
    joined = []
    for vote in votes:
        question = questions.get(vote.get("question_id"), {})
        turn = int(vote.get("turn", 1)) - 1
        row = dict(vote)
        row["id"] = f"{vote.get('question_id')}:{vote.get('judge')}:{vote.get('model_a')}:{vote.get('model_b')}"
        row["category"] = question.get("category")
        turns = question.get("turns") or []
        row["prompt"] = turns[turn] if turn < len(turns) else None
        for side in ("a", "b"):
            model_turns = answers.get((vote.get(f"model_{side}"), vote.get("question_id"))) or []
            row[f"response_{side}"] = model_turns[turn] if turn < len(model_turns) else None
        joined.append(row)
    return joined


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
