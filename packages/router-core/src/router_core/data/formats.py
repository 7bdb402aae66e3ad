"""Row parsers, one per source schema, each turning a raw row (dict) into a canonical `Battle`.

A parser raises `ValueError` with a short reason for a row it cannot use; the caller skips that row.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Mapping
from typing import Any

from router_core.data.types import WINNERS, Battle, Winner

Row = Mapping[str, Any]
Parser = Callable[[Row, str], Battle]

_WINNER_ALIASES: dict[str, Winner] = {**{w: w for w in WINNERS}, "tie (bothbad)": "both_bad", "bothbad": "both_bad"}


def normalise_winner(value: Any) -> Winner:
    """Map a source's winner label to one of `WINNERS` (`tie (bothbad)` becomes `both_bad`)."""
    label = str(value).strip().lower() if value is not None else ""
    if label not in _WINNER_ALIASES:
        raise ValueError(f"unknown winner {value!r}")
    return _WINNER_ALIASES[label]


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):  # None or NaN
        return None
    text = str(value)
    return text if text.strip() else None


def _model(row: Row, key: str) -> str:
    name = _text(row.get(key))
    if name is None:
        raise ValueError(f"missing {key}")
    return name.strip()


def _structured(value: Any) -> Any:
    """Decode a column that holds JSON or a Python repr (the 140k CSV) into Python objects."""
    if not isinstance(value, str):
        return value.tolist() if hasattr(value, "tolist") else value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return ast.literal_eval(value)


# --- flat rows: canonical JSONL, votes-only files, MT-Bench battles with text -------------------------------------


def _flat_categories(row: Row) -> tuple[str, ...]:
    cats = row.get("categories")
    if cats is not None and not isinstance(cats, str):
        return tuple(str(c) for c in _structured(cats))
    keys = ("categories", "category", "broad_category", "narrower_category")
    return tuple(t for t in (_text(row.get(k)) for k in keys) if t)


def parse_flat(row: Row, source: str) -> Battle:
    """Rows with model_a, model_b, winner and optional prompt/response_a/response_b/history/category columns."""
    history = row.get("history")
    turns = tuple((str(r), str(t)) for r, t in _structured(history)) if history not in (None, "", []) else ()
    ident = next((str(row[k]) for k in ("id", "question_id", "num") if _text(row.get(k)) is not None), "")
    return Battle(
        model_a=_model(row, "model_a"),
        model_b=_model(row, "model_b"),
        winner=normalise_winner(row.get("winner")),
        id=ident,
        prompt=_text(row.get("prompt")),
        history=turns,
        response_a=_text(row.get("response_a")),
        response_b=_text(row.get("response_b")),
        categories=_flat_categories(row),
        language=_text(row.get("language")),
        timestamp=_text(row.get("timestamp", row.get("tstamp"))),
        source=str(row.get("source") or source),
    )


# --- conversations: lmarena 140k and lmsys chatbot_arena_conversations ---------------------------------------------


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for part in _structured(content):
        if not isinstance(part, Mapping) or "type" not in part:
            raise ValueError("message part without a type")
        if part["type"] == "text":
            if part.get("text") is None:
                raise ValueError("text part without text")
            parts.append(str(part["text"]))
    return "".join(parts)


def _conversation(value: Any) -> list[tuple[str, str]]:
    messages = _structured(value)
    if not isinstance(messages, list) or len(messages) < 2:
        raise ValueError("conversation with fewer than 2 messages")
    turns = [(str(m.get("role")), _message_text(m.get("content"))) for m in messages]
    if turns[-1][0] != "assistant" or turns[-2][0] != "user":
        raise ValueError("conversation does not end with a user turn and an assistant answer")
    if any(role not in ("user", "assistant") for role, _ in turns[:-2]):
        raise ValueError("history message with a role other than user/assistant")
    return turns


_CATEGORY_FLAGS = (("creative_writing_v0.1", "creative_writing"), ("if_v0.1", "if"), ("math_v0.1", "math"))


def _tags(category_tag: Any, is_code: Any) -> tuple[str, ...]:
    tags: list[str] = []
    if str(is_code).strip().lower() == "true":
        tags.append("code")
    try:
        tag = _structured(category_tag) if category_tag not in (None, "") else {}
    except (ValueError, SyntaxError):
        return tuple(tags)  # an unreadable tag only loses the categories, not the battle
    if not isinstance(tag, Mapping):
        return tuple(tags)
    tags += [flag for group, flag in _CATEGORY_FLAGS if (tag.get(group) or {}).get(flag) is True]
    tags += [f"criteria:{k}" for k, v in (tag.get("criteria_v0.1") or {}).items() if v is True]
    return tuple(tags)


def _parse_conversations(row: Row, source: str, id_key: str, time_key: str) -> Battle:
    conv_a = _conversation(row.get("conversation_a"))
    conv_b = _conversation(row.get("conversation_b"))
    return Battle(
        model_a=_model(row, "model_a"),
        model_b=_model(row, "model_b"),
        winner=normalise_winner(row.get("winner")),
        id=str(row.get(id_key) or row.get("id") or ""),
        prompt=_text(conv_a[-2][1]),
        history=tuple(conv_a[:-2]),
        response_a=_text(conv_a[-1][1]),
        response_b=_text(conv_b[-1][1]),
        categories=_tags(row.get("category_tag"), row.get("is_code")),
        language=_text(row.get("language")),
        timestamp=_text(row.get(time_key)),
        source=source,
    )


def parse_lmarena_140k(row: Row, source: str) -> Battle:
    """`lmarena-ai/arena-human-preference-140k` rows (content as lists of typed parts)."""
    return _parse_conversations(row, source, "id", "timestamp")


def parse_chatbot_arena(row: Row, source: str) -> Battle:
    """`lmsys/chatbot_arena_conversations` rows (content as plain strings, `tstamp`)."""
    return _parse_conversations(row, source, "question_id", "tstamp")


# --- Kaggle arena-55k CSV ------------------------------------------------------------------------------------------


def parse_kaggle_55k(row: Row, source: str) -> Battle:
    """Kaggle `train.csv`: JSON lists of turns, one-hot winner_model_a/_b/_tie (tie merges tie and both_bad)."""
    prompts, answers_a, answers_b = (_structured(row.get(k)) for k in ("prompt", "response_a", "response_b"))
    if not (isinstance(prompts, list) and prompts and len(prompts) == len(answers_a) == len(answers_b)):
        raise ValueError("prompt/response lists missing or of different lengths")
    flags = [int(float(row.get(k) or 0)) for k in ("winner_model_a", "winner_model_b", "winner_tie")]
    if sorted(flags) != [0, 0, 1]:
        raise ValueError(f"winner columns are not one-hot: {flags}")
    history = []
    for user, answer in zip(prompts[:-1], answers_a[:-1], strict=True):
        history += [("user", str(user or "")), ("assistant", str(answer or ""))]
    return Battle(
        model_a=_model(row, "model_a"),
        model_b=_model(row, "model_b"),
        winner=WINNERS[flags.index(1) if flags[2] == 0 else 2],
        id=str(row.get("id") or ""),
        prompt=_text(prompts[-1]),
        history=tuple(history),
        response_a=_text(answers_a[-1]),
        response_b=_text(answers_b[-1]),
        source=source,
    )


FORMAT_PARSERS: dict[str, Parser] = {
    "lmarena_140k": parse_lmarena_140k,
    "chatbot_arena": parse_chatbot_arena,
    "kaggle_55k": parse_kaggle_55k,
    "votes": parse_flat,
    "canonical": parse_flat,
    # mt_bench_human rows are joined with their question/answer files first (loading.py), then parsed flat.
    "mt_bench_human": parse_flat,
}


def detect_format(columns: set[str]) -> str | None:
    """Guess the schema of a file from its column names; None when nothing fits."""
    if {"conversation_a", "conversation_b"} <= columns:
        return "lmarena_140k" if "evaluation_session_id" in columns or "full_conversation" in columns else "chatbot_arena"
    if {"winner_model_a", "winner_model_b", "winner_tie", "prompt"} <= columns:
        return "kaggle_55k"
    if not {"model_a", "model_b", "winner"} <= columns:
        return None
    if {"question_id", "judge"} <= columns and "prompt" not in columns:
        return "mt_bench_human"
    return "canonical" if "prompt" in columns else "votes"
