"""Base-model sources, loading and prompt formatting, and the safety tuning that makes `vanilla`."""
