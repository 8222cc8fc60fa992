"""Measuring a model: the value questionnaire, harm judges, harm metrics, expressed values."""
