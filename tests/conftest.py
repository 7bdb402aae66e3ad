"""Shared fixtures: an isolated model store per test, offline hub, paths to real-row fixtures."""

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "disabled"

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
