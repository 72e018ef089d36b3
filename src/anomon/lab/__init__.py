"""Offline work on the core: synthetic customers, evaluation on real data, quality scoring."""
