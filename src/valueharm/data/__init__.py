"""Raw inputs: data sources and `data init`, the survey (ESS and synthetic), value arguments, harm benchmarks."""
