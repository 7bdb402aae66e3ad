"""The HTTP server: `create_app(model, length_model=None)` is a Starlette app with `POST /score`, `POST /route`,
`POST /lengths`, `GET /models` and `GET /health`; the models load in the lifespan hook.

A length model (`--length-model`, router_runtime.lengths) is optional: with one, `/lengths` predicts answer lengths
and every `/route` entry carries the chosen model's predicted length; without one, `/lengths` is a 404.

Run it with `router-cli serve --model TYPE/NAME [--length-model DIR]` (uvicorn), or under any ASGI server. See
docs/serving.md.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from router_core.errors import UserError
from router_core.routing import route
from router_core.store import ModelStore
from router_runtime.batching import BatchConfig, ScoreBatcher, ScoreJob, ScoringModel
from router_runtime.lengths import LengthModel, load_length_model
from router_runtime.manifest import MANIFEST, read_manifest
from router_runtime.requests import Limits, RequestError, ScoreRequest, parse_score_request

try:
    import anyio.to_thread
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route
except ImportError as error:  # pragma: no cover - depends on the installed extras
    raise ImportError("the HTTP server needs starlette and uvicorn: install router-runtime[server]") from error

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerConfig:
    """Everything about serving except the model."""

    limits: Limits = field(default_factory=Limits)
    batching: BatchConfig = field(default_factory=BatchConfig)
    threads: int | None = None
    """ONNX Runtime intra-op threads of an exported directory (default: the cores available)."""


def load_model(source: str, threads: int | None = None) -> ScoringModel:
    """An exported directory (`router-cli export`; scored without torch) or a saved model `TYPE/NAME` in the store.

    A directory holding a manifest.json is an exported model; anything else names a saved model.
    """
    if (Path(source) / MANIFEST).is_file():
        from router_runtime.exported import load_exported

        if read_manifest(Path(source)).get("kind") == "length":
            raise UserError(f"{source} is an exported length model: it predicts answer lengths, not scores (serve it "
                            "next to a scorer as the length model)")  # fmt: skip
        return load_exported(Path(source), threads=threads)
    from router_core.pipeline import load_scorer

    try:
        saved = ModelStore().resolve(source)
    except UserError as error:
        if Path(source).is_dir():
            raise UserError(f"{source} is a directory without {MANIFEST}, so not an exported model (make one with "
                            f"router-cli export), and not a saved model either: {error}") from error
        raise
    return load_scorer(saved)


def create_app(model: str | Callable[[], ScoringModel], config: ServerConfig | None = None,
               length_model: str | Callable[[], LengthModel] | None = None) -> Starlette:  # fmt: skip
    """The ASGI app serving one scorer and, optionally, one length model.

    Args:
        model: what `load_model` takes (an exported directory or a saved model `TYPE/NAME`), or a function
            returning a loaded scorer.
        config: limits and batching (defaults: `ServerConfig()`); both models get the same.
        length_model: what `router_runtime.lengths.load_length_model` takes (an exported length directory, served
            without torch, or a saved length model `TYPE/NAME`), or a function returning a loaded one; None: no
            `/lengths`, and `/route` without lengths.
    """
    config = config or ServerConfig()
    load: Callable[[], ScoringModel] = (lambda: load_model(model, config.threads)) if isinstance(model, str) else model
    load_lengths: Callable[[], LengthModel] | None = (
        (lambda: load_length_model(length_model, config.threads)) if isinstance(length_model, str) else length_model)
    name = _name(model)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncGenerator[None, None]:
        scorer = await anyio.to_thread.run_sync(_load_and_warm_up, load)
        log.info("serving %s (%d known models)", name, len(scorer.known_models))
        lengths = None if load_lengths is None else await anyio.to_thread.run_sync(_load_and_warm_up_lengths,
                                                                                     load_lengths)  # fmt: skip
        async with AsyncExitStack() as stack:
            batcher = await stack.enter_async_context(ScoreBatcher(scorer, config.batching))
            app.state.lengths = None
            if lengths is not None:
                log.info("predicting lengths with %s (%s tokens)", _name(length_model), lengths.tokenizer)
                length_batcher = await stack.enter_async_context(ScoreBatcher(LengthScores(lengths), config.batching))
                app.state.lengths = _Lengths(lengths, length_batcher, _name(length_model))
            app.state.scorer, app.state.batcher, app.state.config, app.state.name = scorer, batcher, config, name
            yield

    routes = [
        Route("/score", _score, methods=["POST"]),
        Route("/route", _route, methods=["POST"]),
        Route("/lengths", _lengths, methods=["POST"]),
        Route("/models", _models, methods=["GET"]),
        Route("/health", _health, methods=["GET"]),
    ]
    handlers: dict[Any, Any] = {RequestError: _request_error, HTTPException: _http_error, Exception: _server_error}
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)


class LengthScores:
    """A length model seen as a `ScoringModel` (`score` is `predict_lengths`), so a `ScoreBatcher` merges concurrent
    `/lengths` requests as it merges `/score` ones; lengths are never NaN, so its unknown-model fill changes none."""

    def __init__(self, model: LengthModel) -> None:
        self.model = model

    def score(self, prompts: Sequence[str], models: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """Predicted lengths in tokens, (n_prompts, n_models)."""
        return self.model.predict_lengths(prompts, models, batch_size)

    @property
    def known_models(self) -> tuple[str, ...]:
        """Models the length model saw in training."""
        return self.model.known_models


@dataclass(frozen=True)
class _Lengths:
    """The served length model, its batcher and its name (for /health)."""

    model: LengthModel
    batcher: ScoreBatcher
    name: str

    async def predict(self, body: ScoreRequest) -> np.ndarray:
        """Predicted lengths (n_prompts, n_models) of a validated request, merged with concurrent ones."""
        return await self.batcher.score(ScoreJob(body.prompts, body.models, body.batch_size))


def _name(model: object) -> str:
    return model if isinstance(model, str) else getattr(model, "__name__", type(model).__name__)


def _load_and_warm_up(load: Callable[[], ScoringModel]) -> ScoringModel:
    scorer = load()
    if scorer.known_models:  # loads the encoder now, so the first request is not the slow one
        scorer.score([f"warm-up {uuid.uuid4()}"], scorer.known_models[:1])
    return scorer


def _load_and_warm_up_lengths(load: Callable[[], LengthModel]) -> LengthModel:
    model = load()
    model.predict_lengths([f"warm-up {uuid.uuid4()}"], model.known_models[:1] or ["warm-up"])
    return model


async def _score(request: Request) -> JSONResponse:
    body, scores = await _scored(request)
    return JSONResponse({m: scores[:, j].tolist() for j, m in enumerate(body.models)})


async def _route(request: Request) -> JSONResponse:
    """The best model per prompt; with a length model also its predicted length (predicted for every candidate
    while the scorer runs, then the chosen column kept)."""
    lengths: _Lengths | None = request.app.state.lengths
    body = await _parsed(request)
    batcher: ScoreBatcher = request.app.state.batcher
    job = ScoreJob(body.prompts, body.models, body.batch_size)
    if lengths is None:
        scores, predicted = await batcher.score(job), None
    else:
        scores, predicted = await asyncio.gather(batcher.score(job), lengths.predict(body))
    index, best = route(scores)
    routes: list[dict[str, Any]] = [{"model": body.models[j], "score": s}
                                    for j, s in zip(index.tolist(), best.tolist(), strict=True)]  # fmt: skip
    if predicted is not None:
        for i, (entry, j) in enumerate(zip(routes, index.tolist(), strict=True)):
            entry["length"] = float(predicted[i, j])
    return JSONResponse({"routes": routes})


async def _lengths(request: Request) -> JSONResponse:
    """`{"lengths": {model: [predicted length per prompt]}, "tokenizer": name}`; 404 without a length model."""
    lengths: _Lengths | None = request.app.state.lengths
    if lengths is None:
        raise RequestError(404, "path", "this server has no length model (start it with --length-model DIR or "
                           "TYPE/NAME)")  # fmt: skip
    body = await _parsed(request)
    predicted = await lengths.predict(body)
    return JSONResponse({"lengths": {m: predicted[:, j].tolist() for j, m in enumerate(body.models)},
                         "tokenizer": lengths.model.tokenizer})  # fmt: skip


async def _parsed(request: Request) -> ScoreRequest:
    config: ServerConfig = request.app.state.config
    return parse_score_request(await _read_body(request, config.limits.max_body_bytes), config.limits)


async def _scored(request: Request) -> tuple[ScoreRequest, Any]:
    body = await _parsed(request)
    batcher: ScoreBatcher = request.app.state.batcher
    return body, await batcher.score(ScoreJob(body.prompts, body.models, body.batch_size))


async def _models(request: Request) -> JSONResponse:
    lengths: _Lengths | None = request.app.state.lengths
    out: dict[str, Any] = {"models": list(request.app.state.scorer.known_models)}
    if lengths is not None:
        out["length_model"] = {"tokenizer": lengths.model.tokenizer, "models": list(lengths.model.known_models)}
    return JSONResponse(out)


async def _health(request: Request) -> JSONResponse:
    state = request.app.state
    out = {"status": "ok", "model": state.name, "scorer": type(state.scorer).__name__,
           "backend": getattr(state.scorer, "backend", None), "known_models": len(state.scorer.known_models),
           "limits": asdict(state.config.limits), "batching": state.batcher.describe()}  # fmt: skip
    lengths: _Lengths | None = state.lengths
    if lengths is not None:
        out["length_model"] = {"model": lengths.name, "kind": "length", "predictor": type(lengths.model).__name__,
                               "backend": getattr(lengths.model, "backend", None),
                               "tokenizer": lengths.model.tokenizer, "known_models": len(lengths.model.known_models),
                               "batching": lengths.batcher.describe()}  # fmt: skip
    return JSONResponse(out)


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `limit` bytes."""
    too_large = RequestError(413, "body", f"request body over {limit} bytes (the server's --max-body-bytes)")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def _request_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestError)
    return JSONResponse(error.payload(), status_code=error.status)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    where = "method" if error.status_code == 405 else "path"
    payload = {"errors": [{"field": where, "message": f"{error.detail}: {request.method} {request.url.path}"}]}
    return JSONResponse(payload, status_code=error.status_code, headers=error.headers)


async def _server_error(request: Request, error: Exception) -> JSONResponse:
    # A bug or a broken model, never a client's request; Starlette re-raises it after this, so it is logged.
    return JSONResponse({"errors": [{"field": None, "message": "internal server error"}]}, status_code=500)
