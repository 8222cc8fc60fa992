"""The study report: Markdown (and HTML) tables and plots from the analysis outputs."""
