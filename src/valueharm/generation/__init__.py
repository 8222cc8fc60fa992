"""Generation backends: `hf` (in-process transformers) and `openai` (any OpenAI-compatible server).

Every backend returns one row per prompt with full provenance (see `hf.generate_rows`).
"""
