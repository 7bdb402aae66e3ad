"""`transformer_embedding`: a fine-tuned transformer prompt encoder + the LLM embedding, scored by a two-tower head."""

from router_neural.transformer_embedding.model import TransformerEmbeddingScorer

__all__ = ["TransformerEmbeddingScorer"]
