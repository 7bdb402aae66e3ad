"""Prompt-agnostic scorers (Elo, Bradley-Terry, least squares, greedy ranking, min-cost flow) and their kernels."""
