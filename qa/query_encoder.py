"""Moved to index.onnx_encoder (the writing side exports and verifies it); this name stays for old imports."""
from index.onnx_encoder import CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE, OnnxQueryEncoder, QueryEncoderError, default_threads  # noqa: F401
