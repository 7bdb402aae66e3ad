"""Shared fixtures: an isolated model store per test, offline hub, paths to real-row fixtures."""

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "disabled"
if os.environ.get("PYTEST_XDIST_WORKER"):  # one compute thread per worker: `-n 2` on 2 cores, not 2 x 2 threads
    os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "data"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def router_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty ROUTER_HOME."""
    home = tmp_path_factory.mktemp("router_home")
    monkeypatch.setenv("ROUTER_HOME", str(home))
    return home


@pytest.fixture
def fixtures() -> Path:
    """Folder of real-row data fixtures."""
    return FIXTURES
