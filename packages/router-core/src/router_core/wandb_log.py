"""Optional Weights & Biases logging of a training run (any model type) that never blocks or fails training.

The mode comes from WANDB_MODE; without an API key (WANDB_API_KEY or a netrc entry) runs are logged offline.
Every call is guarded: a W&B problem becomes one warning line and training goes on.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from router_core.specs import WandbSpec


def _has_api_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return "api.wandb.ai" in netrc.read_text()
    except OSError:
        return False


class WandbRun:
    """A W&B run, or a no-op when disabled or when W&B fails."""

    def __init__(self, spec: WandbSpec | None, config: dict[str, Any], log: Callable[[str], None]) -> None:
        self.spec, self._log, self._run = spec, log, None
        if spec is None:
            return
        if os.environ.get("WANDB_MODE") == "disabled":
            return
        # With WANDB_MODE set, wandb reads it itself (mode=None); otherwise offline unless there is an API key.
        mode: Literal["online", "offline"] | None = None
        if not os.environ.get("WANDB_MODE"):
            mode = "online" if _has_api_key() else "offline"
        try:
            import wandb  # an optional dependency (installed with router-neural)

            settings = wandb.Settings(init_timeout=20, silent=True)
            config = config | ({"config_name": spec.config_name} if spec.config_name else {})
            self._run = wandb.init(project=spec.project, name=spec.experiment_name, config=config, mode=mode,
                                   settings=settings, reinit="finish_previous")  # fmt: skip
        except Exception as error:  # noqa: BLE001 - logging must never stop training
            self._warn("start", error)

    @property
    def active(self) -> bool:
        """Whether a run is open."""
        return self._run is not None

    def _warn(self, what: str, error: Exception) -> None:
        self._log(f"warning: W&B {what} failed, continuing without it ({type(error).__name__}: {str(error)[:160]})")
        self._run = None

    def log(self, metrics: dict[str, Any], step: int) -> None:
        """Log one epoch's metrics."""
        if self._run is not None:
            try:
                self._run.log(metrics, step=step)
            except Exception as error:  # noqa: BLE001
                self._warn("log", error)

    def finish(self, model_dir: Path | None = None) -> None:
        """Upload a saved model directory (spec, meta, calibration, state) as the artifact, then close the run
        and say where it was logged."""
        if self._run is None:
            return
        try:
            if model_dir is not None and self.spec is not None and self.spec.artifact_name:
                import wandb

                artifact = wandb.Artifact(self.spec.artifact_name, type="model")
                artifact.add_dir(str(model_dir))
                self._run.log_artifact(artifact)
            where = self._run.url if getattr(self._run, "url", None) else f"offline, in {self._run.dir}"
            self._run.finish()
            self._log(f"W&B run logged: {where}")
        except Exception as error:  # noqa: BLE001
            self._warn("finish", error)
        self._run = None
