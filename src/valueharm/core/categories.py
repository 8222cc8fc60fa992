"""The study's harm taxonomy: HEx-PHI's eleven categories (docs/paper.md, "Safety evaluation").

Every benchmark maps its prompts into these (data/benchmarks.py), the simulator draws results over
them (analysis/simulate.py) and the hypotheses registry names them; one tuple, so they cannot drift.
"""

from __future__ import annotations

HARM_CATEGORIES: tuple[str, ...] = (
    "illegal_activity",
    "child_abuse",
    "hate_harass_violence",
    "malware",
    "physical_harm",
    "economic_harm",
    "fraud_deception",
    "adult_content",
    "political_campaigning",
    "privacy_violation",
    "tailored_financial_advice",
)
