"""Dependency direction and start-up weight: core imports no sibling and no torch; prompt-agnostic paths stay light."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "sentence_transformers", "transformers", "onnxruntime", "datasets")


def _modules_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint(','.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(out.stdout.strip().splitlines()[-1].split(","))


def test_core_imports_no_sibling_and_no_heavy_package():
    loaded = _modules_after("import router_core.pipeline, router_core.data.loading, router_core.store, router_core.specs")
    assert not {m.split(".")[0] for m in loaded} & {*HEAVY, "router_classic", "router_neural", "router_runtime", "numba"}


def test_cli_help_imports_nothing_heavy():
    loaded = _modules_after("import router_cli\nrouter_cli.build_parser().format_help()")
    assert not {m.split(".")[0] for m in loaded} & {*HEAVY, "numba", "pandas", "router_classic"}


def test_training_elo_never_imports_torch(tmp_path):
    spec = ROOT / "training_specs" / "elo_scoring" / "smoke.json"
    code = (f"import os; os.environ['ROUTER_HOME'] = {str(tmp_path)!r}\n"
            f"import router_cli; assert router_cli.main(['train', '--spec-file', {str(spec)!r}, '--no-progress']) == 0")
    loaded = _modules_after(code)
    assert not {m.split(".")[0] for m in loaded} & set(HEAVY)


def test_source_tree_direction():
    packages = ROOT / "packages"
    rules = {"router-core": ("router_classic", "router_neural", "router_runtime", "router_cli"),
             "router-classic": ("router_neural", "router_runtime", "router_cli"),
             "router-neural": ("router_classic", "router_runtime", "router_cli"),
             "router-runtime": ("router_cli",)}
    for package, banned in rules.items():
        for path in (packages / package / "src").rglob("*.py"):
            text = path.read_text()
            for name in banned:
                assert f"import {name}" not in text and f"from {name}" not in text, f"{path} imports {name}"
