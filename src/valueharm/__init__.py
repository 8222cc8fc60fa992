"""valueharm: the study "Unintended Harms of Value-Aligned LLMs" (Choi et al., ACL 2025) as a DVC pipeline."""

__version__ = "0.1.0"
