"""The expressed-values check: a real MiniLM value classifier, and the agreement arithmetic."""

from valueharm.core.values import VALUES
from valueharm.data.arguments import load_arguments
from valueharm.evaluation.expressed import agreement, expressed_profiles, fit_value_classifier


def flat(top: str, high: float = 6.0) -> dict[str, float]:
    return {v: (high if v == top else 1.0) for v in VALUES}


def test_agreement_rewards_expressing_the_target():
    base = {v: 0.2 for v in VALUES}
    expressed = {
        "vanilla": base,
        "hedonism": {**base, "hedonism": 0.6},
        "power": {**base, "power": 0.5},
        "security": {**base, "security": 0.7},
    }
    targets = {"vanilla": None, "hedonism": flat("hedonism"), "power": flat("power"), "security": flat("security")}
    result = agreement(expressed, targets)
    assert result["per_value"]["hedonism"]["spearman"] > 0
    assert all(r > 0 for r in result["per_model_spearman"].values())
    assert result["per_value"]["tradition"]["spearman"] is None  # constant target: undefined, not 0


def test_value_classifier_learns_the_corpus(repo_root):
    arguments = load_arguments(repo_root / "src/valueharm/corpora/value_arguments.tsv")
    classifier = fit_value_classifier(arguments, seed=0, folds=3)
    aucs = [a for a in classifier["cv_auc"].values() if a is not None]
    assert len(aucs) == 10 and sum(aucs) / len(aucs) > 0.7
    profiles = expressed_profiles(classifier, {"m": ["I just want to party all weekend and enjoy good food and fun."]})
    assert max(profiles["m"], key=profiles["m"].get) in {"hedonism", "stimulation"}
