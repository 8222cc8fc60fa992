"""Making a value-aligned model: VIM examples (argument generation, questionnaire answering), ICL prompts, LoRA training."""
