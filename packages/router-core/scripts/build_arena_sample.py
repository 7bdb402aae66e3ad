"""Rebuild router-core's embedded `arena_sample` dataset from the shared data folder.

Run from the repository root: `uv run python packages/router-core/scripts/build_arena_sample.py ../shared/data`.
Only sources whose SOURCES.md shows a redistributable licence are included (see the NOTICE it writes beside).
"""

import gzip
import io
import json
import sys
from pathlib import Path

from router_core.data.loading import load_file

SOURCES = (  # (path under the data folder, source tag)
    ("mt_bench_human/human_judgments_turn1.jsonl", "mt_bench_human"),
    ("kaggle_arena_55k_samples/train_sample_khaaliswooden.csv", "kaggle_arena_55k_khaaliswooden"),
    ("arena/chatbot_arena_2023_votes.jsonl", "chatbot_arena_2023_votes"),
)
OUT = Path(__file__).resolve().parents[1] / "src/router_core/data/embedded/arena_sample.jsonl.gz"


def main(data_dir: Path) -> None:
    """Load each source with the normal loaders and write them as canonical JSONL (gzip, reproducible bytes)."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=9) as handle:
        for relative, tag in SOURCES:
            battles = load_file(data_dir / relative)
            for battle in battles:
                row = battle.to_json() | {"source": tag}
                handle.write((json.dumps(row, ensure_ascii=False) + "\n").encode())
            print(f"{relative}: {len(battles)} battles")
    OUT.write_bytes(buffer.getvalue())
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"))
