"""The Triton model repository: every config.pbtxt parses into Triton's ModelConfig, the ensemble is wired
consistently, and the repository run in-process (tests/runtime/triton_sim.py) scores like the exported model."""

import numpy as np
import pytest

from router_core.errors import UserError
from router_core.routing import route
from router_core.scoring import score_models
from router_runtime import load_exported
from router_runtime.export import export_model
from router_runtime.triton_repo import TritonOptions, render_pbtxt, write_triton_repo
from tests.runtime.triton_sim import NUMPY_TYPES, Repository, client_inputs, parse_config

PROMPTS = ["How do I sort a list in Python?", "Tell me a joke about cats", "", "word " * 400, "Écris un poème"]


@pytest.fixture(scope="module")
def repo(exported, tmp_path_factory):
    """`repo(name) -> Path`: the Triton repository of the exported model `name` (written once per module)."""
    done = {}

    def get(name: str):
        if name not in done:
            done[name] = tmp_path_factory.mktemp("triton") / name
            write_triton_repo(exported(name), done[name], TritonOptions(name="router", pad_buckets=(8, 32)))
        return done[name]

    return get


@pytest.mark.parametrize("name", ["dense_network", "dense_network_nofeat", "dn_embedding"])
def test_every_config_parses_as_a_triton_model_config(repo, name) -> None:
    root = repo(name)
    configs = {d.name: parse_config(d) for d in root.iterdir()}
    assert set(configs) == {"router", "router_preprocess", "router_encoder", "router_head"}
    for directory, config in configs.items():
        assert config.name == directory and config.max_batch_size == 64
        assert (root / directory / "1").is_dir()
    assert configs["router"].platform == "ensemble"
    assert configs["router_encoder"].backend == "onnxruntime" and (root / "router_encoder/1/model.onnx").is_file()
    for step in ("router_preprocess", "router_encoder", "router_head"):
        assert configs[step].dynamic_batching.max_queue_delay_microseconds == 2000
    for python_model in ("router_preprocess", "router_head"):
        assert configs[python_model].backend == "python" and (root / python_model / "1" / "model.py").is_file()
    features = any(o.name == "FEATURES" for o in configs["router_preprocess"].output)
    assert features == (name != "dense_network_nofeat") == (root / "router_preprocess/1/scaler.json").is_file()


@pytest.mark.parametrize("name", ["dense_network", "dense_network_nofeat"])
def test_the_ensemble_is_wired_consistently(repo, name) -> None:
    configs = {d.name: parse_config(d) for d in repo(name).iterdir()}
    ensemble = configs["router"]
    available = {t.name: t for t in ensemble.input}  # tensor name in the ensemble -> its declaration
    for step in ensemble.ensemble_scheduling.step:
        model = configs[step.model_name]
        assert ensemble.max_batch_size <= model.max_batch_size
        inputs, outputs = {t.name: t for t in model.input}, {t.name: t for t in model.output}
        assert set(step.input_map) == set(inputs), step.model_name
        for key, value in step.input_map.items():
            assert value in available, f"{step.model_name} reads {value} before anything produces it"
            assert available[value].data_type == inputs[key].data_type
        assert set(step.output_map) <= set(outputs)
        available |= {value: outputs[key] for key, value in step.output_map.items()}
    for output in ensemble.output:
        assert available[output.name].data_type == output.data_type and list(available[output.name].dims) == list(
            output.dims)


@pytest.mark.parametrize("name", ["dense_network", "dn_embedding", "dense_network_nofeat"])
def test_the_repository_scores_like_the_exported_model(repo, exported, name) -> None:
    scorer = load_exported(exported(name))
    models = [scorer.known_models[2], "never-seen", *scorer.known_models[:2]]
    out = Repository(repo(name)).infer("router", client_inputs(PROMPTS, models))
    expected = score_models(scorer, PROMPTS, models)
    np.testing.assert_allclose(out["SCORES"], expected, atol=1e-5, rtol=0)  # padding differs: float noise only
    index, best = route(expected)
    assert [b.decode() for b in out["BEST_MODEL"][:, 0]] == [models[j] for j in index]
    np.testing.assert_allclose(out["BEST_SCORE"][:, 0], best, atol=1e-5, rtol=0)


def test_preprocess_pads_to_the_smallest_bucket_that_fits(repo) -> None:
    repository = Repository(repo("dense_network"))
    short = repository.infer("router_preprocess", {"PROMPT": client_inputs(["hi"], ["x"])["PROMPT"]})
    long = repository.infer("router_preprocess", {"PROMPT": client_inputs(["word " * 20], ["x"])["PROMPT"]})
    assert short["input_ids"].shape == (1, 8) and long["input_ids"].shape == (1, 32)
    assert short["attention_mask"].sum() < 8 and short["input_ids"].dtype == NUMPY_TYPES["TYPE_INT64"]


def test_a_request_with_no_candidate_is_an_error_response_not_a_crash(repo) -> None:
    repository = Repository(repo("dense_network"))
    embedding = np.zeros((1, 384), dtype=np.float32)
    features = np.zeros((1, 44), dtype=np.float32)
    with pytest.raises(ValueError, match="MODELS must hold at least one candidate"):
        repository.infer("router_head", {"EMBEDDING": embedding, "FEATURES": features,
                                         "MODELS": np.zeros((1, 0), dtype=object)})  # fmt: skip


def test_a_prompt_agnostic_model_is_one_python_model(trained_store, tmp_path) -> None:
    export_model(trained_store.resolve("elo_scoring/elo_scoring"), tmp_path / "elo")
    write_triton_repo(tmp_path / "elo", tmp_path / "repo", TritonOptions(name="elo-router"))
    assert [d.name for d in (tmp_path / "repo").iterdir()] == ["elo-router"]
    scorer = load_exported(tmp_path / "elo")
    models = ["nobody", *scorer.known_models[:3]]
    out = Repository(tmp_path / "repo").infer("elo-router", client_inputs(PROMPTS[:2], models))
    np.testing.assert_array_equal(out["SCORES"], score_models(scorer, PROMPTS[:2], models))


def test_refuses_a_non_empty_output_and_a_bad_name(exported, tmp_path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with pytest.raises(UserError, match="not an empty directory"):
        write_triton_repo(exported("dense_network_nofeat"), tmp_path / "taken")
    with pytest.raises(UserError, match="Triton model name"):
        TritonOptions(name="../escape")
    with pytest.raises(UserError, match="no manifest.json"):
        write_triton_repo(tmp_path / "taken", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_protobuf_text_rendering() -> None:
    from router_runtime.triton_repo import Enum

    text = render_pbtxt({"name": 'a"b', "max_batch_size": 8, "flag": True, "dims": [-1, 3], "empty": [],
                         "kind": Enum("KIND_CPU"), "nested": {"x": 1.5}, "item": [{"k": "v"}, {"k": "w"}]})  # fmt: skip
    assert text == ('name: "a\\"b"\nmax_batch_size: 8\nflag: true\ndims: [-1, 3]\nempty: []\nkind: KIND_CPU\n'
                    'nested {\n  x: 1.5\n}\nitem {\n  k: "v"\n}\nitem {\n  k: "w"\n}\n')  # fmt: skip
    with pytest.raises(ValueError, match="non-ASCII"):
        render_pbtxt({"name": "é"})


@pytest.mark.slow  # ~20 s; the repository itself is checked in-process above (configs, scores)
def test_router_cli_export_writes_a_triton_repository(trained_store, exported, monkeypatch, tmp_path, capsys) -> None:
    from router_cli import build_parser, main
    from router_runtime.triton_repo import TritonOptions

    monkeypatch.setenv("ROUTER_HOME", str(trained_store.home))
    assert main(["export", "--model", "dense_network/dense_network_nofeat", "--output", str(tmp_path / "fresh"),
                 "--format", "triton-repo", "--triton-name", "dn", "--triton-queue-delay-us", "500"]) == 0  # fmt: skip
    assert "clients call 'dn'" in capsys.readouterr().out
    config = parse_config(tmp_path / "fresh" / "dn_encoder")
    assert config.dynamic_batching.max_queue_delay_microseconds == 500
    # an exported directory converts without exporting again
    assert main(["export", "--model", str(exported("dense_network_nofeat")), "--output", str(tmp_path / "from-dir"),
                 "--format", "triton-repo"]) == 0  # fmt: skip
    assert (tmp_path / "from-dir" / "router_head" / "1" / "head.safetensors").is_file()
    assert main(["export", "--model", str(exported("dense_network_nofeat")), "--output", str(tmp_path / "bad"),
                 "--format", "triton-repo", "--triton-name", "no/slash"]) == 2  # fmt: skip
    args = build_parser().parse_args(["export", "--model", "x", "--output", "y"])
    defaults = TritonOptions()
    assert (args.triton_name, args.triton_max_batch_size, args.triton_queue_delay_us) == (
        defaults.name, defaults.max_batch_size, defaults.max_queue_delay_us)
