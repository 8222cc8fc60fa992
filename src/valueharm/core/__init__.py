"""Foundations every step uses: errors, atomic writes, params, artifact paths, the registry, the ten values."""
