"""`router-serve`: the HTTP server on uvicorn, one model per process; the console script of a torch-free install.

`router-serve --model DIR [--length-model DIR]` serves an exported directory (and an exported length model) with
router-runtime[onnx,server] alone (no torch); `router-cli serve` is the same command (same flags) in the full
environment, where --model and --length-model may also be TYPE/NAME.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from router_core.errors import UserError


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `router-serve` and `router-cli serve`."""
    parser.add_argument("--model", required=True, help="exported directory (router-cli export; served without torch) "
                        "or saved model TYPE/NAME (needs the full environment)")  # fmt: skip
    parser.add_argument("--length-model", metavar="DIR|TYPE/NAME",
                        help="also serve a length model (dn_embedding_length_prediction): POST /lengths, and the "
                        "chosen model's predicted length in /route; an exported directory (no torch) or a saved "
                        "model TYPE/NAME")  # fmt: skip
    parser.add_argument("--threads", type=int, default=None,
                        help="ONNX Runtime threads for an exported directory (default: the available cores)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    batching = parser.add_argument_group("batching")
    batching.add_argument("--batch-window-ms", type=float, default=5.0,
                          help="how long a batch waits for more requests (default 5; 0 = merge only waiting ones)")
    batching.add_argument("--max-batch-prompts", type=int, default=512,
                          help="most prompts in one merged encoder pass (default 512)")
    batching.add_argument("--no-batching", action="store_true", help="score every request alone")
    limits = parser.add_argument_group("request limits")
    limits.add_argument("--max-prompts", type=int, default=256, help="prompts per request (default 256)")
    limits.add_argument("--max-prompt-chars", type=int, default=32768, help="characters per prompt (default 32768)")
    limits.add_argument("--max-models", type=int, default=256, help="models per request (default 256)")
    limits.add_argument("--max-model-chars", type=int, default=256, help="characters per model name (default 256)")
    limits.add_argument("--max-batch-size", type=int, default=1024, help="largest batch_size (default 1024)")
    limits.add_argument("--max-body-bytes", type=int, default=8 << 20, help="request body bytes (default 8 MiB)")
    limits.add_argument("--max-concurrency", type=int, default=None,
                        help="open connections before new ones get 503 (default: no limit)")
    parser.add_argument("--access-log", action="store_true", help="log every request")


def run_serve(args: argparse.Namespace) -> int:
    """Build the app from parsed flags and serve until interrupted."""
    try:
        import uvicorn

        from router_runtime.batching import BatchConfig
        from router_runtime.requests import Limits
        from router_runtime.server import ServerConfig, create_app
    except ImportError as error:
        raise UserError(f"serving needs router-runtime[server] (starlette, uvicorn): {error}") from error
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be in 0..65535, got {args.port}")
    try:
        limits = Limits(args.max_prompts, args.max_prompt_chars, args.max_models, args.max_model_chars,
                        args.max_batch_size, args.max_body_bytes)  # fmt: skip
        batching = BatchConfig(args.batch_window_ms, args.max_batch_prompts, enabled=not args.no_batching)
    except ValueError as error:
        raise UserError(str(error)) from error
    if args.threads is not None and args.threads < 1:
        raise UserError("--threads must be at least 1")
    _check_model("--model", args.model, length=False)
    if args.length_model is not None:
        _check_model("--length-model", args.length_model, length=True)
    app = create_app(args.model, ServerConfig(limits, batching, args.threads), length_model=args.length_model)
    uvicorn.run(app, host=args.host, port=args.port, access_log=args.access_log, log_level="info",
                limit_concurrency=args.max_concurrency, lifespan="on")  # fmt: skip
    return 0


def _check_model(flag: str, source: str, length: bool) -> None:
    """A missing or damaged model, or a scorer and a length model swapped, is one clear error naming `flag` now, not
    a traceback from the server's start-up hook."""
    from router_runtime.lengths import is_length_model

    try:
        is_length = is_length_model(source)
    except UserError as error:
        raise UserError(f"{flag} {source}: {error}") from error
    if is_length and not length:
        raise UserError(f"--model {source} is a length model: it predicts answer lengths, not scores; serve it next "
                        "to a scorer with --length-model")  # fmt: skip
    if length and not is_length:
        raise UserError(f"--length-model {source} is a scorer, not a length model (dn_embedding_length_prediction); "
                        "serve it with --model")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """`router-serve`: exit 0 after a clean stop, 2 on a user mistake (one line on stderr, no traceback)."""
    import logging

    parser = argparse.ArgumentParser(prog="router-serve", description="Serve /score and /route over HTTP for one "
                                     "model, and /lengths with --length-model (see docs/serving.md).")  # fmt: skip
    add_serve_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return run_serve(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def main_exit() -> None:
    """Console-script entry point."""
    sys.exit(main())
