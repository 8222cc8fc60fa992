"""Value profiles from the survey (anchors, JSD-nearest respondents) and the study's models: the one model-name parser."""
