"""Statistics over judged answers: the long table, correlations, bootstrap, GLMs, paired tests, hypotheses."""
