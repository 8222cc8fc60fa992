"""Prompt-only baseline: the role-play prompt lists every value's definition and score."""

from __future__ import annotations

import pytest

from valueharm.alignment.icl import format_score, icl_prompt, with_icl
from valueharm.core.errors import UserError
from valueharm.core.values import DEFINITIONS, DISPLAY, VALUES


def test_prompt_lists_each_definition_and_score():
    profile = dict.fromkeys(VALUES, 1.0) | {"hedonism": 6.0, "power": 4.5, "tradition": 10 / 3}
    text = icl_prompt(profile)
    for v in VALUES:
        assert DEFINITIONS[v] in text
    assert "- Hedonism: 6\n" in text and "- Power: 4.5\n" in text and "- Tradition: 3.33\n" in text
    assert "- Achievement: 1\n" in text
    # canonical order in the score list
    scores = text.split("How much each value matters")[1]
    assert [scores.index(f"- {DISPLAY[v]}:") for v in VALUES] == sorted(
        scores.index(f"- {DISPLAY[v]}:") for v in VALUES
    )


def test_with_icl_prefixes_and_is_deterministic():
    profile = {v: 3 for v in VALUES}
    out = with_icl(profile, "QUESTION: hi\nANSWER: ")
    assert out.startswith(icl_prompt(profile)) and out.endswith("\n\nQUESTION: hi\nANSWER: ")
    assert out == with_icl(dict(reversed(list(profile.items()))), "QUESTION: hi\nANSWER: ")


def test_bad_profile():
    with pytest.raises(UserError, match="no score"):
        icl_prompt({"power": 3})


def test_format_score():
    assert [format_score(x) for x in (6, 6.0, 4.5, 1.25, 3.999)] == ["6", "6", "4.5", "1.25", "4"]
