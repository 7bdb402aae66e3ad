"""Exporting a saved model to a directory that scores without torch: `export_model(source, output, quantize)`.

Needs the `export` extra (torch, router-neural, onnx). The directory (format version 1) holds, flat:

    manifest.json      format, format_version, kind, model_type, source (ref, created, spec), quantize,
                       use_prompt_features, unseen_models, parity, versions, files {name: sha256}
    model.onnx         prompt-aware only: the sentence encoder as one graph, inputs input_ids and attention_mask
                       (batch, seq) int64, output sentence_embedding (batch, dim) float32, pooled and normalised
                       as the source encoder does (transformer_embedding: its fine-tuned transformer, adapters
                       merged); ONNX Runtime's BERT fusions applied where they match; int8: dynamic per-channel
                       weight quantisation
    tokenizer.json     the encoder's `tokenizers` file; encoder.json: dimension, max_seq_length, pad_token_id,
                       strip / lowercase, pooling (mode, normalize; done inside the graph), fused operators
    scaler.json        the fitted prompt-feature scaler (only when the model uses the 44 prompt features)
    head.json          head structure + model-name index; head.safetensors its arrays (see router_runtime.head)
    scores.json        prompt-agnostic only: {"scores": {model: score}} (no ONNX)
    booster.json       gradient_boosting only (kind "trees"): XGBoost's JSON model; trees.json the model index,
                       the input blocks and the LLM-embedding table (see router_runtime.trees); model.onnx etc.
                       only with the prompt_embedding input, scaler.json only with prompt_features
    calibration.json   the saved model's logistic link, when it has one
    length.json        dn_embedding_length_prediction only (kind "length"): tokenizer lengths are counted in, the
                       target (log tokens), the known models, the unseen-model fallback and the log shift; the head
                       (head.json) predicts log tokens with one extra last row, the fallback of unseen models

Models the source never saw score NaN; `router_core.scoring.score_models` gives them the mean of the known
candidates, as for the saved model. Before anything is written, the export is scored against the torch model on a
fixed set of prompts: fp32 must agree within 1e-4 (max abs), int8 must keep a Spearman correlation of 0.99 and
the same best model for 95% of prompts; otherwise a `ParityError` is raised and nothing is written. A length
model's predicted lengths (its known models and one unseen name) must agree within a relative 1e-4 in fp32 and
keep a Spearman correlation of 0.99 in int8.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from router_core.errors import UserError
from router_core.evaluation import CALIBRATION_FILE
from router_core.store import ModelStore, SavedModel
from router_runtime.encoder import ENCODER_JSON, ENCODER_ONNX, TOKENIZER
from router_runtime.exported import LENGTH, LENGTH_FALLBACK, SCALER, SCORES, load_exported, load_exported_length
from router_runtime.head import save_head
from router_runtime.manifest import MANIFEST, write_manifest
from router_runtime.trees import save_trees

try:
    import torch
except ImportError as error:  # pragma: no cover - depends on the install
    raise UserError("exporting needs torch and onnx: install router-runtime[export]") from error

log = logging.getLogger(__name__)
Quantize = Literal["none", "int8"]
FP32_MAX_ABS, INT8_SPEARMAN, INT8_TOP1 = 1e-4, 0.99, 0.95
FP32_MAX_REL = 1e-4
"""Length models: the largest relative difference of fp32 predicted lengths from the torch model's."""
PARITY_UNSEEN = "parity-check-unseen-model"
"""A model name no length model knows, predicted in the parity check so the unseen-model fallback is checked too."""
N_PARITY_PROMPTS = 96
OPSET = 17
BERT_LIKE = frozenset({"bert", "roberta", "xlm-roberta", "distilbert", "camembert", "electra"})
"""Encoder architectures ONNX Runtime's `bert` graph fusions are written for."""


class ParityError(UserError):
    """The exported model does not score like the torch model."""

    exit_code = 1


def export_model(source: SavedModel | str, output: str | Path, quantize: Quantize = "none",
                 prompts: Sequence[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """Export a saved model into `output` (created, or replacing an earlier export there); returns the manifest.

    Args:
        source: a saved model, or its TYPE/NAME in the default model store.
        output: the directory to write; an existing directory must be empty or hold an earlier export.
        quantize: "int8" stores the encoder with int8 weights (smaller, faster on CPU, within the int8 parity bounds).
        prompts: the prompts of the parity check (default: a fixed sample of the bundled arena battles).
    """
    if quantize not in ("none", "int8"):
        raise UserError(f"quantize must be 'none' or 'int8', not {quantize!r}")
    from router_core.pipeline import load_model

    saved = source if isinstance(source, SavedModel) else ModelStore().resolve(source)
    output = Path(output)
    _check_output(output)
    scorer = load_model(saved)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=output.parent))
    try:
        manifest = _write_contents(scorer, saved, tmp, quantize, list(prompts or parity_prompts()))
        _replace(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("exported %s to %s (%s)", saved.ref, output, quantize)
    return manifest


def parity_prompts(n: int = N_PARITY_PROMPTS) -> list[str]:
    """The fixed parity-check prompts: the first `n` distinct prompts of the bundled arena sample, plus edge cases."""
    from router_core.data.loading import load_embedded_sample

    prompts = list(dict.fromkeys(b.prompt for b in load_embedded_sample() if b.prompt))[:n]
    return prompts + ["", "hi", "Écris un poème sur la mer. 海についての詩を書いてください。", "word " * 600]


def _check_output(output: Path) -> None:
    if output.exists() and not output.is_dir():
        raise UserError(f"--output {output} exists and is not a directory")
    if output.is_dir() and any(output.iterdir()) and not (output / MANIFEST).is_file():
        raise UserError(f"--output {output} is a non-empty directory that is not an earlier export; choose another")


def _replace(tmp: Path, output: Path) -> None:
    """Swap the finished export in by renames (an earlier export there is replaced whole)."""
    trash = None
    if output.exists():
        trash = output.parent / f".{output.name}.old-{os.getpid()}"
        os.replace(output, trash)
    os.replace(tmp, output)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def _write_contents(scorer: Any, saved: SavedModel, directory: Path, quantize: Quantize,
                    prompts: list[str]) -> dict[str, Any]:  # fmt: skip
    spec = scorer.spec
    files = []
    if (saved.path / CALIBRATION_FILE).is_file():
        shutil.copyfile(saved.path / CALIBRATION_FILE, directory / CALIBRATION_FILE)
        files.append(CALIBRATION_FILE)
    fields: dict[str, Any] = {
        "model_type": spec.model_type,
        "source": {"ref": saved.ref, "created": saved.meta.get("created"), "spec": spec.model_dump(mode="json")},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "unseen_models": "score NaN; router_core.scoring.score_models fills the mean of the known candidates",
    }
    models = list(scorer.known_models)
    if not spec.prompt_aware:
        table = np.asarray(scorer.score([""], models), dtype=np.float64)[0]
        (directory / SCORES).write_text(json.dumps({"scores": dict(zip(models, table.tolist(), strict=True))},
                                                   indent=1) + "\n")  # fmt: skip
        fields |= {"kind": "score_table", "quantize": "none", "use_prompt_features": False}
        write_manifest(directory, fields, [*files, SCORES])
        return _check(directory, scorer, prompts[:8], "none", fields, [*files, SCORES])
    if spec.model_type == "gradient_boosting":
        return _write_trees(scorer, directory, quantize, prompts, fields, files)
    from router_runtime.backends.torch import head_of, length_head_of

    length = spec.task == "length"
    files += save_head(length_head_of(scorer) if length else head_of(scorer), directory)
    uses_features = spec.model_type == "transformer_embedding" or bool(spec.use_prompt_features)  # its head reads them
    if uses_features:
        (directory / SCALER).write_text(json.dumps(scorer.scaler_.to_json(), indent=1) + "\n")
        files.append(SCALER)
    fields |= {"kind": "prompt_aware", "use_prompt_features": uses_features}
    if length:
        files.append(_write_length_state(scorer, directory))
        fields |= {"kind": "length", "tokenizer": scorer.tokenizer, "unseen_models": LENGTH_FALLBACK}
    return _with_encoder(scorer, directory, quantize, prompts, fields, files)


def _write_length_state(predictor: Any, directory: Path) -> str:
    """length.json of a length model (see the module docstring); returns its name."""
    state = {"tokenizer": predictor.tokenizer, "target": "log(tokens)", "models": list(predictor.known_models),
             "unseen_models": LENGTH_FALLBACK, "log_shift": float(getattr(predictor, "log_shift_", 0.0))}  # fmt: skip
    (directory / LENGTH).write_text(json.dumps(state, indent=1) + "\n")
    return LENGTH


def _with_encoder(scorer: Any, directory: Path, quantize: Quantize, prompts: list[str], fields: dict[str, Any],
                  files: list[str]) -> dict[str, Any]:  # fmt: skip
    """Add the encoder, check fp32 parity, and with int8 quantise the encoder and check again."""
    te = scorer.spec.model_type == "transformer_embedding"
    files = [*files, *export_encoder(transformer_source(scorer) if te else scorer.spec.embedding_model_name, directory)]
    fields = _check(directory, scorer, prompts, "none", fields | {"quantize": "none"}, files)
    if quantize == "int8":
        quantize_encoder(directory)
        fields = _check(directory, scorer, prompts, "int8", fields | {"quantize": "int8"}, files)
    return fields


def _write_trees(scorer: Any, directory: Path, quantize: Quantize, prompts: list[str], fields: dict[str, Any],
                 files: list[str]) -> dict[str, Any]:  # fmt: skip
    """gradient_boosting: the trees (+ the scaler, + the encoder with prompt_embedding), checked like the others."""
    blocks = list(scorer.spec.input_features)
    files = [*files, *save_trees(scorer, directory)]
    if "prompt_features" in blocks:
        (directory / SCALER).write_text(json.dumps(scorer.scaler_.to_json(), indent=1) + "\n")
        files.append(SCALER)
    fields |= {"kind": "trees", "use_prompt_features": "prompt_features" in blocks, "input_features": blocks}
    if "prompt_embedding" not in blocks:  # nothing to quantise: the trees read the prompt features only
        if quantize == "int8":
            log.info("%s has no prompt encoder; int8 quantisation does not apply, exporting fp32", scorer.spec.model_type)
        return _check(directory, scorer, prompts, "none", fields | {"quantize": "none"}, files)
    return _with_encoder(scorer, directory, quantize, prompts, fields, files)


def _check(directory: Path, scorer: Any, prompts: list[str], quantize: Quantize, fields: dict[str, Any],
           files: list[str]) -> dict[str, Any]:  # fmt: skip
    """Score `prompts` with the export and the torch model (a length model: predict their lengths); raise
    ParityError outside the bounds, else write the manifest with the measured agreement."""
    write_manifest(directory, fields, files)
    if fields["kind"] == "length":
        return _check_lengths(directory, scorer, prompts, quantize, fields, files)
    models = list(scorer.known_models)
    with torch.no_grad():
        expected = np.asarray(scorer.score(prompts, models), dtype=np.float64)
    actual = load_exported(directory, backend="onnx").score(prompts, models)
    parity = parity_stats(expected, actual)
    log.info("parity (%s) on %d prompts: %s", quantize, len(prompts), parity)
    if quantize == "none" and not parity["max_abs_diff"] <= FP32_MAX_ABS:
        raise ParityError(f"export refused: fp32 scores differ from the torch model by up to {parity['max_abs_diff']:.3g} "
                          f"(bound {FP32_MAX_ABS}) on {len(prompts)} sample prompts")  # fmt: skip
    if quantize == "int8" and not (parity["spearman"] >= INT8_SPEARMAN and parity["top1_agreement"] >= INT8_TOP1):
        raise ParityError(f"export refused: int8 scores keep Spearman {parity['spearman']:.4f} (bound {INT8_SPEARMAN}) "
                          f"and the same best model for {parity['top1_agreement']:.1%} of prompts (bound "
                          f"{INT8_TOP1:.0%}); export without --quantize")  # fmt: skip
    fields = fields | {"parity": {"n_prompts": len(prompts), "n_models": len(models), **parity}}
    write_manifest(directory, fields, files)
    return fields


def _check_lengths(directory: Path, predictor: Any, prompts: list[str], quantize: Quantize, fields: dict[str, Any],
                   files: list[str]) -> dict[str, Any]:  # fmt: skip
    """`_check` of a length model: predicted lengths of the known models and one unseen name."""
    models = [*predictor.known_models, PARITY_UNSEEN]
    with torch.no_grad():
        expected = np.asarray(predictor.predict_lengths(prompts, models), dtype=np.float64)
    actual = load_exported_length(directory).predict_lengths(prompts, models)
    parity = length_parity_stats(expected, actual)
    log.info("length parity (%s) on %d prompts: %s", quantize, len(prompts), parity)
    if quantize == "none" and not parity["max_rel_diff"] <= FP32_MAX_REL:
        raise ParityError(f"export refused: fp32 predicted lengths differ from the torch model's by up to "
                          f"{parity['max_rel_diff']:.3g} relative (bound {FP32_MAX_REL}) on {len(prompts)} sample "
                          "prompts")  # fmt: skip
    if quantize == "int8" and not parity["spearman"] >= INT8_SPEARMAN:
        raise ParityError(f"export refused: int8 predicted lengths keep Spearman {parity['spearman']:.4f} (bound "
                          f"{INT8_SPEARMAN}); export without --quantize")  # fmt: skip
    fields = fields | {"parity": {"n_prompts": len(prompts), "n_models": len(models), **parity}}
    write_manifest(directory, fields, files)
    return fields


def length_parity_stats(expected: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """Max relative difference |actual / expected - 1| of predicted lengths (all > 0) and their Spearman correlation."""
    relative = float(np.abs(actual / expected - 1.0).max(initial=0.0)) if expected.size else 0.0
    return {"max_rel_diff": relative if np.isfinite(relative) else float("inf"),
            "spearman": parity_stats(expected, actual)["spearman"]}  # fmt: skip


def parity_stats(expected: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """Max abs difference, Spearman correlation of all scores, and the share of prompts with the same best model."""
    ranks = [np.argsort(np.argsort(a.ravel(), kind="stable"), kind="stable").astype(np.float64) for a in (expected, actual)]
    spearman = float(np.corrcoef(ranks[0], ranks[1])[0, 1]) if expected.size > 1 and ranks[0].std() > 0 else 1.0
    top1 = float((expected.argmax(axis=1) == actual.argmax(axis=1)).mean()) if expected.size else 1.0
    return {"max_abs_diff": float(np.abs(expected - actual).max(initial=0.0)), "spearman": spearman,
            "top1_agreement": top1}  # fmt: skip


# -- the encoder ---------------------------------------------------------------------------------------------------
class _SentenceGraph(torch.nn.Module):
    """tokens -> the sentence-transformer's pooled (and normalised) embedding, as one traceable module."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.model({"input_ids": input_ids, "attention_mask": attention_mask})["sentence_embedding"]


@dataclass(frozen=True)
class EncoderSource:
    """What `export_encoder` traces: `graph` maps input_ids and attention_mask (batch, seq) int64 to prompt vectors
    (batch, dimension) float32, pooling included; `transformer` is the transformer inside it (its config picks the
    ONNX Runtime fusions), `tokenizer` its Hugging Face fast tokenizer."""

    name: str
    """Recorded as encoder.json's source."""
    graph: torch.nn.Module
    transformer: Any
    tokenizer: Any
    dimension: int
    max_seq_length: int
    pooling: dict[str, Any]
    """{"mode": ..., "normalize": ...}, as the graph pools."""
    strip: bool
    """Whether texts are stripped before tokenising (sentence-transformers does, transformer_embedding does not)."""
    lowercase: bool = False
    modules: tuple[str, ...] = ()
    """The sentence-transformers modules, when the source is one."""

    @classmethod
    def sentence_transformer(cls, name: str) -> EncoderSource:
        """The sentence-transformer `name` (router_neural.embeddings), on the CPU."""
        from router_neural.embeddings import load_sentence_transformer

        model = load_sentence_transformer(name, "cpu").eval()
        pooling = [getattr(m, "pooling_mode", None) for m in model if type(m).__name__ == "Pooling"]
        dimension = (model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension")
                     else model.get_sentence_embedding_dimension())  # fmt: skip
        return cls(name, _SentenceGraph(model), model[0].auto_model, model.tokenizer, int(dimension),
                   int(model.max_seq_length), {"mode": pooling[0] if pooling else None,
                   "normalize": any(type(m).__name__ == "Normalize" for m in model)}, strip=True,
                   lowercase=bool(getattr(model[0], "do_lower_case", False)),
                   modules=tuple(type(m).__name__ for m in model))  # fmt: skip


def transformer_source(scorer: Any) -> EncoderSource:
    """A fitted transformer_embedding scorer's prompt encoder: its fine-tuned transformer as one plain float
    transformer (`merged_backbone`: adapters merged, a qlora base dequantised) and its pooling; texts tokenised as
    the scorer does (no strip, truncated to the spec's max_length)."""
    from router_neural.transformer_embedding.encoder import PromptEncoder
    from router_neural.transformer_embedding.finetuning import merged_backbone

    spec, encoder = scorer.spec, scorer.network_.encoder
    backbone = merged_backbone(encoder.backbone, scorer.base_dir(), spec.finetuning_spec)
    pooling = {"mode": encoder.pooling.mode, "normalize": encoder.pooling.normalize}
    return EncoderSource(f"{spec.transformer_model_name} ({spec.finetuning_spec.method}-fine-tuned)",
                         PromptEncoder(backbone, encoder.pooling), backbone, scorer.tokenizer(),
                         int(scorer.dims_["prompt_dim"]), int(spec.max_length), pooling, strip=False)  # fmt: skip


_TRACED: dict[str, Path] = {}
"""Sentence-transformers already exported by this process (name -> a temporary directory with the three files)."""


def export_encoder(source: str | EncoderSource, directory: Path) -> list[str]:
    """Write model.onnx (fp32, fused where ONNX Runtime's BERT fusions apply), tokenizer.json and encoder.json of a
    sentence-transformer (by name) or of an in-memory encoder (`EncoderSource`).

    Models sharing a sentence-transformer, exported in one process, trace and fuse it once.
    """
    files = [ENCODER_ONNX, TOKENIZER, ENCODER_JSON]
    if isinstance(source, EncoderSource):
        _trace_encoder(source, directory)
        return files
    if source not in _TRACED:
        traced = Path(tempfile.mkdtemp(prefix="router-encoder-"))
        atexit.register(shutil.rmtree, traced, True)
        _trace_encoder(EncoderSource.sentence_transformer(source), traced)
        _TRACED[source] = traced
    for file in files:
        shutil.copyfile(_TRACED[source] / file, directory / file)
    return files


def _trace_encoder(source: EncoderSource, directory: Path) -> None:
    # The TorchScript exporter with eager attention gives the graph pattern ONNX Runtime fuses into its Attention
    # kernel; SDPA attention (or the dynamo exporter) leaves attention as separate MatMul/Softmax nodes.
    source.transformer.set_attn_implementation("eager")
    tokens = source.tokenizer(["a short prompt", "a somewhat longer prompt with a few more words in it"],
                              padding=True, return_tensors="pt")  # fmt: skip
    raw = directory / "encoder.raw.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes about constant-folded shape checks in the pooling module
        torch.onnx.export(source.graph, (tokens["input_ids"], tokens["attention_mask"]), str(raw),
                          input_names=["input_ids", "attention_mask"], output_names=["sentence_embedding"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                                        "sentence_embedding": {0: "batch"}}, opset_version=OPSET, dynamo=False)  # fmt: skip
    fused = _optimize(raw, directory / ENCODER_ONNX, source.transformer.config)
    raw.unlink()
    source.tokenizer.backend_tokenizer.save(str(directory / TOKENIZER))
    config = {
        "source": source.name,
        "dimension": source.dimension,
        "max_seq_length": source.max_seq_length,
        "pad_token_id": int(source.tokenizer.pad_token_id),
        "strip": source.strip,
        "lowercase": source.lowercase,
        "pooling": source.pooling | {"in_graph": True},
        **({"modules": list(source.modules)} if source.modules else {}),
        "opset": OPSET,
        "fused_operators": fused,
    }
    (directory / ENCODER_JSON).write_text(json.dumps(config, indent=1) + "\n")


def _optimize(raw: Path, target: Path, config: Any) -> dict[str, int]:
    """ONNX Runtime's transformer fusions for BERT-like encoders (others are copied); returns the fused op counts."""
    if config.model_type not in BERT_LIKE:
        log.info("no ONNX Runtime fusions for %s encoders; exporting the plain graph", config.model_type)
        os.replace(raw, target)
        return {}
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(str(raw), model_type="bert", num_heads=int(config.num_attention_heads),
                               hidden_size=int(config.hidden_size), opt_level=1)  # fmt: skip
    # model_type="bert" gives a BertOnnxModel, but imported under another module path than
    # onnxruntime.transformers.onnx_model_bert (the optimizer puts its own folder on sys.path), so no isinstance
    statistics = getattr(optimized, "get_fused_operator_statistics", None)
    if statistics is None:
        raise RuntimeError(f"ONNX Runtime's bert optimizer returned a {type(optimized).__name__} without fusion counts")
    optimized.save_model_to_file(str(target), use_external_data_format=False)
    return {k: int(v) for k, v in statistics().items() if v}


def quantize_encoder(directory: Path) -> None:
    """Replace model.onnx by its dynamic per-channel int8-weight version (onnxruntime.quantization)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = directory / ENCODER_ONNX
    target = directory / "model.int8.onnx"
    logging.disable(logging.WARNING)  # the quantiser advises pre-processing on the root logger; it is for CNNs
    try:
        quantize_dynamic(str(source), str(target), per_channel=True, weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})  # fmt: skip
    finally:
        logging.disable(logging.NOTSET)
    os.replace(target, source)
    config = json.loads((directory / ENCODER_JSON).read_text())
    (directory / ENCODER_JSON).write_text(json.dumps(config | {"quantization": "dynamic int8 weights, per channel"},
                                                     indent=1) + "\n")  # fmt: skip
