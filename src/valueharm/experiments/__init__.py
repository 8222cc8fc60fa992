"""Cross-stage experiments: the params gate, the focus comparison, mitigation prompts."""
