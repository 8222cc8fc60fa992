"""Schwartz's ten basic values and four higher-order groups: canonical names, definitions, aliases.

Every module names values through `resolve()`, so "Self-direction", "self direction", "SD" and
"self_direction" all mean the same value, and an unknown name fails with the valid choices.
"""

from __future__ import annotations

import difflib
import re

from valueharm.core.errors import UserError

VALUES: tuple[str, ...] = (
    "achievement",
    "benevolence",
    "conformity",
    "hedonism",
    "power",
    "security",
    "self_direction",
    "stimulation",
    "tradition",
    "universalism",
)

# Membership as the study's released code encodes it (docs/paper.md, "Values").
HIGHER_ORDER: dict[str, tuple[str, ...]] = {
    "openness_to_change": ("self_direction", "stimulation"),
    "self_enhancement": ("achievement", "hedonism", "power"),
    "conservation": ("conformity", "security", "tradition"),
    "self_transcendence": ("benevolence", "universalism"),
}

DISPLAY: dict[str, str] = {
    "achievement": "Achievement",
    "benevolence": "Benevolence",
    "conformity": "Conformity",
    "hedonism": "Hedonism",
    "power": "Power",
    "security": "Security",
    "self_direction": "Self-direction",
    "stimulation": "Stimulation",
    "tradition": "Tradition",
    "universalism": "Universalism",
    "openness_to_change": "Openness to change",
    "self_enhancement": "Self-enhancement",
    "conservation": "Conservation",
    "self_transcendence": "Self-transcendence",
}

# Short definitions in our own words (used in prompts for the prompt-only baselines).
DEFINITIONS: dict[str, str] = {
    "achievement": "doing well by the standards of others and being seen as capable and successful",
    "benevolence": "looking after the wellbeing of family, friends and the people one deals with every day",
    "conformity": "holding back from actions that would upset others or break social rules and expectations",
    "hedonism": "seeking pleasure, enjoyment and treats for oneself",
    "power": "having status and prestige, and control over people and resources",
    "security": "keeping oneself, one's relationships and society safe, stable and in order",
    "self_direction": "thinking and acting independently: choosing, creating and exploring on one's own terms",
    "stimulation": "looking for excitement, novelty and challenge",
    "tradition": "respecting and keeping the customs and ideas of one's culture or religion",
    "universalism": "understanding, tolerating and protecting the welfare of all people and of nature",
}

# Order around Schwartz's circle (neighbours are compatible, opposites conflict).
CIRCUMPLEX_ORDER: tuple[str, ...] = (
    "self_direction",
    "stimulation",
    "hedonism",
    "achievement",
    "power",
    "security",
    "conformity",
    "tradition",
    "benevolence",
    "universalism",
)

_ABBREVIATIONS = {
    "ac": "achievement",
    "ach": "achievement",
    "be": "benevolence",
    "ben": "benevolence",
    "co": "conformity",
    "con": "conformity",
    "he": "hedonism",
    "hed": "hedonism",
    "po": "power",
    "pow": "power",
    "se": "security",
    "sec": "security",
    "sd": "self_direction",
    "st": "stimulation",
    "sti": "stimulation",
    "stim": "stimulation",
    "tr": "tradition",
    "tra": "tradition",
    "trad": "tradition",
    "un": "universalism",
    "uni": "universalism",
    "univ": "universalism",
    "oc": "openness_to_change",
    "otc": "openness_to_change",
    "seh": "self_enhancement",
    "cons": "conservation",
    "st_": "self_transcendence",
    "str": "self_transcendence",
}


def normalise_key(name: str) -> str:
    """Lower-case and treat '-', '_' and spaces alike: 'Self-direction' -> 'self_direction'."""
    return re.sub(r"[\s_\-]+", "_", name.strip().lower()).strip("_")


def resolve(name: str, allow_groups: bool = True) -> str:
    """Canonical name for a value or (when allowed) a higher-order group; UserError otherwise."""
    key = normalise_key(str(name))
    valid = VALUES + (tuple(HIGHER_ORDER) if allow_groups else ())
    if key in valid:
        return key
    if key in _ABBREVIATIONS and _ABBREVIATIONS[key] in valid:
        return _ABBREVIATIONS[key]
    squashed = key.replace("_", "")
    for candidate in valid:
        if candidate.replace("_", "") == squashed:
            return candidate
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise UserError(f"unknown value name {name!r}{hint}", "valid names: " + ", ".join(valid))


def members(name: str) -> tuple[str, ...]:
    """The basic values a name stands for: itself, or a higher-order group's members."""
    canonical = resolve(name)
    return HIGHER_ORDER.get(canonical, (canonical,))
