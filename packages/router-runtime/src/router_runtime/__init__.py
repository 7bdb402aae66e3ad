"""router-runtime: the serving side of the toolkit.

Not implemented yet: ONNX export and torch-free onnxruntime scoring, Triton kernels and the HTTP server are
planned here (see docs/architecture.md). Until then, serve scores with `router-cli infer`.
"""
