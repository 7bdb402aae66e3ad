"""No pickle anywhere: no module imports a pickle-based serialiser or loads arrays / tensors with pickle allowed."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_FORBIDDEN = [
    re.compile(r"^\s*(import|from)\s+(pickle|cPickle|dill|cloudpickle|joblib|shelve|marshal)\b", re.M),
    re.compile(r"\btorch\.load\("),  # safetensors only
    re.compile(r"allow_pickle\s*=\s*True"),
    re.compile(r"\bnp\.load\((?![^)]*allow_pickle=False)"),
    re.compile(r"\bread_pickle\("),
]


def test_no_source_file_can_unpickle():
    sources = sorted((ROOT / "packages").rglob("*.py"))
    assert len(sources) > 50
    found = [f"{path.relative_to(ROOT)}: {pattern.pattern}" for path in sources for pattern in _FORBIDDEN
             if pattern.search(path.read_text(encoding="utf-8"))]  # fmt: skip
    assert found == []
