"""Prompt-aware neural scorers (dense_network, dn_embedding) and simple_scoring, with their shared training loop,
optimizers (Adam, AdamW, Muon) and sentence-transformer embeddings. Scorers are reached through
`router_core.registry.scorer_class`; importing this package does not import torch."""
