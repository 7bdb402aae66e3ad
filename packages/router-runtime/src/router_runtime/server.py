"""The HTTP server: `create_app(model)` is a Starlette app with `POST /score`, `POST /route`, `GET /models` and
`GET /health`; the model loads in the lifespan hook.

Run it with `router-cli serve --model TYPE/NAME` (uvicorn), or under any ASGI server. See docs/serving.md.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from router_core.errors import UserError
from router_core.routing import route
from router_core.store import ModelStore
from router_runtime.batching import BatchConfig, ScoreBatcher, ScoreJob, ScoringModel
from router_runtime.manifest import MANIFEST
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


def create_app(model: str | Callable[[], ScoringModel], config: ServerConfig | None = None) -> Starlette:
    """The ASGI app serving one model.

    Args:
        model: what `load_model` takes (an exported directory or a saved model `TYPE/NAME`), or a function
            returning a loaded scorer.
        config: limits and batching (defaults: `ServerConfig()`).
    """
    config = config or ServerConfig()
    load: Callable[[], ScoringModel] = (lambda: load_model(model, config.threads)) if isinstance(model, str) else model
    name = model if isinstance(model, str) else getattr(model, "__name__", type(model).__name__)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncGenerator[None, None]:
        scorer = await anyio.to_thread.run_sync(_load_and_warm_up, load)
        log.info("serving %s (%d known models)", name, len(scorer.known_models))
        async with ScoreBatcher(scorer, config.batching) as batcher:
            app.state.scorer, app.state.batcher, app.state.config, app.state.name = scorer, batcher, config, name
            yield

    routes = [
        Route("/score", _score, methods=["POST"]),
        Route("/route", _route, methods=["POST"]),
        Route("/models", _models, methods=["GET"]),
        Route("/health", _health, methods=["GET"]),
    ]
    handlers: dict[Any, Any] = {RequestError: _request_error, HTTPException: _http_error, Exception: _server_error}
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)


def _load_and_warm_up(load: Callable[[], ScoringModel]) -> ScoringModel:
    scorer = load()
    if scorer.known_models:  # loads the encoder now, so the first request is not the slow one
        scorer.score([f"warm-up {uuid.uuid4()}"], scorer.known_models[:1])
    return scorer


async def _score(request: Request) -> JSONResponse:
    body, scores = await _scored(request)
    return JSONResponse({m: scores[:, j].tolist() for j, m in enumerate(body.models)})


async def _route(request: Request) -> JSONResponse:
    body, scores = await _scored(request)
    index, best = route(scores)
    routes = [{"model": body.models[j], "score": s} for j, s in zip(index.tolist(), best.tolist(), strict=True)]
    return JSONResponse({"routes": routes})


async def _scored(request: Request) -> tuple[ScoreRequest, Any]:
    config: ServerConfig = request.app.state.config
    body = parse_score_request(await _read_body(request, config.limits.max_body_bytes), config.limits)
    batcher: ScoreBatcher = request.app.state.batcher
    return body, await batcher.score(ScoreJob(body.prompts, body.models, body.batch_size))


async def _models(request: Request) -> JSONResponse:
    return JSONResponse({"models": list(request.app.state.scorer.known_models)})


async def _health(request: Request) -> JSONResponse:
    state = request.app.state
    return JSONResponse({"status": "ok", "model": state.name, "scorer": type(state.scorer).__name__,
                         "backend": getattr(state.scorer, "backend", None),
                         "known_models": len(state.scorer.known_models), "limits": asdict(state.config.limits),
                         "batching": state.batcher.describe()})  # fmt: skip


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
