"""Runs a Triton model repository's ensemble in-process, as Triton would route tensors through it.

Python-backend models run through their generated model.py with a stand-in for `triton_python_backend_utils`;
onnxruntime-backend models run in an ONNX Runtime session. Every tensor crossing a model boundary is checked
against that model's config (data type, and dims after the batch dimension). Used by test_triton_repo.py.
"""

import json
import runpy
import sys
import types
from pathlib import Path

import numpy as np
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2 as mc

NUMPY_TYPES = {"TYPE_STRING": np.object_, "TYPE_FP32": np.float32, "TYPE_FP64": np.float64,
               "TYPE_INT64": np.int64, "TYPE_INT32": np.int32}  # fmt: skip


def parse_config(model_dir: Path) -> mc.ModelConfig:
    """config.pbtxt parsed into Triton's ModelConfig protobuf (a ParseError on anything Triton would refuse)."""
    return text_format.Parse((model_dir / "config.pbtxt").read_text(), mc.ModelConfig())


def check_tensor(array: np.ndarray, spec, batched: bool) -> None:
    """`array` agrees with a ModelInput / ModelOutput: data type, and dims after the batch dimension."""
    type_name = mc.DataType.Name(spec.data_type)
    assert array.dtype == NUMPY_TYPES[type_name], f"{spec.name}: {array.dtype} is not {type_name}"
    shape = array.shape[1:] if batched else array.shape
    assert len(shape) == len(spec.dims), f"{spec.name}: shape {array.shape} vs dims {list(spec.dims)}"
    assert all(d == -1 or d == s for d, s in zip(spec.dims, shape, strict=True)), f"{spec.name}: {array.shape}"


class _Tensor:
    def __init__(self, name: str, array: np.ndarray) -> None:
        self._name, self._array = name, np.asarray(array)

    def name(self) -> str:
        return self._name

    def as_numpy(self) -> np.ndarray:
        return self._array


class _Response:
    def __init__(self, output_tensors, error=None) -> None:
        self.output_tensors, self.error = output_tensors, error


class _Error(Exception):
    def message(self) -> str:
        return str(self)


class _Request:
    def __init__(self, inputs: dict[str, np.ndarray]) -> None:
        self.inputs = inputs


def fake_pb_utils() -> types.ModuleType:
    """The part of `triton_python_backend_utils` the models use."""
    module = types.ModuleType("triton_python_backend_utils")
    module.Tensor, module.InferenceResponse, module.TritonError = _Tensor, _Response, _Error
    module.get_input_tensor_by_name = lambda request, name: (
        _Tensor(name, request.inputs[name]) if name in request.inputs else None)
    return module


class Repository:
    """A model repository loaded as Triton would: configs parsed, python models initialised once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.configs = {d.name: parse_config(d) for d in sorted(root.iterdir()) if d.is_dir()}
        self._models: dict[str, object] = {}

    def infer(self, model: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One request to `model` (an ensemble or a single model); returns its outputs by name."""
        config = self.configs[model]
        batched = config.max_batch_size > 0
        for spec in config.input:
            check_tensor(inputs[spec.name], spec, batched)
        if config.platform == "ensemble":
            outputs = self._ensemble(config, inputs)
        elif config.backend == "onnxruntime":
            outputs = self._onnx(model, config, inputs)
        else:
            outputs = self._python(model, config, inputs)
        for spec in config.output:
            check_tensor(outputs[spec.name], spec, batched)
        return {spec.name: outputs[spec.name] for spec in config.output}

    def _ensemble(self, config, inputs):
        tensors = dict(inputs)
        for step in config.ensemble_scheduling.step:
            produced = self.infer(step.model_name, {key: tensors[value] for key, value in step.input_map.items()})
            tensors |= {value: produced[key] for key, value in step.output_map.items()}
        return tensors

    def _onnx(self, model, config, inputs):
        import onnxruntime

        if model not in self._models:
            path = self.root / model / "1" / "model.onnx"
            self._models[model] = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [spec.name for spec in config.output]
        return dict(zip(names, self._models[model].run(names, inputs), strict=True))

    def _python(self, model, config, inputs):
        if model not in self._models:
            instance = runpy.run_path(str(self.root / model / "1" / "model.py"))["TritonPythonModel"]()
            previous = sys.modules.get("triton_python_backend_utils")
            sys.modules["triton_python_backend_utils"] = fake_pb_utils()  # only while the model initialises
            try:
                instance.initialize({"model_config": json.dumps(config_json(config)),
                                     "model_repository": str(self.root / model), "model_version": "1"})  # fmt: skip
            finally:
                if previous is None:
                    del sys.modules["triton_python_backend_utils"]
                else:
                    sys.modules["triton_python_backend_utils"] = previous
            self._models[model] = instance
        (response,) = self._models[model].execute([_Request(inputs)])
        if response.error is not None:
            raise ValueError(response.error.message())
        return {t.name(): t.as_numpy() for t in response.output_tensors}


def client_inputs(prompts: list[str], models: list[str]) -> dict[str, np.ndarray]:
    """PROMPT (batch, 1) and MODELS (batch, n) as a Triton client sends them (bytes)."""
    return {"PROMPT": np.array([[p.encode()] for p in prompts], dtype=object),
            "MODELS": np.array([[m.encode() for m in models] for _ in prompts], dtype=object)}  # fmt: skip


def config_json(config) -> dict:
    """A ModelConfig as the JSON Triton gives Python models."""
    return json.loads(json_format.MessageToJson(config, preserving_proto_field_name=True))
