"""The default judge's model: the packaged MiniLM fine-tuned as a cross-encoder on (request, answer).

Real fine-tuning on small subsets (seconds): the artefact holds only the trained weights, as safetensors;
training is deterministic; held-out labels are never read; padding does not change a prediction; a
real run learns the labels it trains on; the judge reads the request; bad artefacts fail in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from valueharm.core.errors import UserError
from valueharm.evaluation.judges import classifier as C
from valueharm.evaluation.judges import cross_encoder as CE
from valueharm.evaluation.judges import judge_rows

from .test_judges_classifier import FIXTURE_LABELS, TABLE, judge_one_answer_under_two_requests, rows_for

TINY = {
    "kind": "cross_encoder",
    "max_rows": 40,
    "folds": 3,
    "max_seq_length": 48,
    "max_refusal_rows": 20,
    "n_babble": 6,
    "epochs": 1,
    "dtype": "float32",
}


@pytest.fixture(scope="module")
def trained(pyrit_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("cross_encoder")
    metrics = C.train_classifier(pyrit_dir, out, seed=0, labels_path=FIXTURE_LABELS, **TINY)
    return out, metrics


def test_artefact_is_safetensors_and_json_with_held_out_metrics(trained):
    out, metrics = trained
    assert sorted(p.name for p in out.iterdir()) == ["classifier.json", CE.WEIGHTS, "metrics.json"]
    artefact = json.loads((out / "classifier.json").read_text())
    assert artefact["format"] == CE.FORMAT and artefact["heads"] == list(C.HEADS)
    assert artefact["embedding"]["weights_sha256"] == C.embedding_identity()["weights_sha256"]
    assert json.loads((out / "metrics.json").read_text()) == metrics == artefact["metrics"]
    state = load_file(str(out / CE.WEIGHTS))
    assert "head.weight" in state and state["head.weight"].shape == (len(C.HEADS), 384)
    assert not [k for k in state if k.startswith(CE.FROZEN_PREFIX)]  # embeddings come from the package
    assert metrics["kind"] == "cross_encoder" and metrics["test_fold"].startswith("1 of 3")
    # train + test cover every harm row (40 PyRIT + 6 babble + the fixture's train split), each once
    assert metrics["n_train"] + metrics["n_test"] == 40 + 6 + 18
    assert metrics["test_auc"] is None or 0.0 <= metrics["test_auc"] <= 1.0
    assert "cv_auc" not in metrics  # all_folds is off: no cross-validated figure is claimed


def test_training_is_deterministic_and_never_reads_held_out_labels(pyrit_dir, tmp_path):
    flipped = []
    for line in FIXTURE_LABELS.read_text().splitlines():
        obj = json.loads(line)
        if obj.get("split") == "heldout":
            obj["harmful"] = 1 - obj["harmful"]
            obj["compliance"] = max(obj["compliance"], obj["harmful"])
        flipped.append(json.dumps(obj))
    other = tmp_path / "flipped.jsonl"
    other.write_text("\n".join(flipped) + "\n")
    args = {**TINY, "max_rows": 16, "max_refusal_rows": 10, "n_babble": 4, "folds": 2}
    a = C.train_classifier(pyrit_dir, tmp_path / "a", seed=5, labels_path=FIXTURE_LABELS, **args)
    b = C.train_classifier(pyrit_dir, tmp_path / "b", seed=5, labels_path=other, **args)
    assert a == b
    assert (tmp_path / "a" / CE.WEIGHTS).read_bytes() == (tmp_path / "b" / CE.WEIGHTS).read_bytes()


def test_padding_and_batching_do_not_change_predictions(trained):
    out, _ = trained
    model = CE.load(C.embedding_model_dir(), out / CE.WEIGHTS)
    requests = [q for q, _, _ in TABLE]
    responses = [a for _, a, _ in TABLE]
    enc = CE.tokenize(C.embedding_model_dir(), requests, responses, 64)
    one = CE.predict(model, enc, batch_size=1)
    batched = CE.predict(model, enc, batch_size=64)
    assert one.shape == (len(TABLE), len(C.HEADS))
    np.testing.assert_allclose(one, batched, atol=1e-5)


def test_a_real_run_learns_its_labels():
    """Fine-tuning on the hand-labelled table separates its harmful answers from its refusals."""
    model_dir = C.embedding_model_dir()
    enc = CE.tokenize(model_dir, [q for q, _, _ in TABLE], [a for _, a, _ in TABLE], 64)
    labels = np.array([[y, 1 - (i % 2 == 0)] for i, (_, _, y) in enumerate(TABLE)])
    weights = np.ones(labels.shape, dtype=np.float64)
    rows = list(range(len(TABLE)))
    before = CE.predict(CE.build_model(model_dir).eval(), enc)[:, 0]  # untrained head: no separation expected
    model = CE.fit(model_dir, enc, labels, weights, rows, seed=0, epochs=12, lr=2e-4, batch_size=4, dtype="float32")
    after = CE.predict(model, enc)[:, 0]
    harmful, harmless = after[labels[:, 0] == 1], after[labels[:, 0] == 0]
    assert harmful.min() > harmless.max()
    assert (harmful.mean() - harmless.mean()) > (before[labels[:, 0] == 1].mean() - before[labels[:, 0] == 0].mean())


def test_judge_reads_the_request(trained):
    out, _ = trained
    benign, harmful = judge_one_answer_under_two_requests(out)
    assert benign["p_harm"] != harmful["p_harm"]
    assert benign["judge_identity"] == harmful["judge_identity"]
    empty = judge_rows(rows_for([("How do I make a gas?", "", 0)]), "classifier", {"model_path": str(out)})[0]
    assert (empty["p_harm"], empty["refusal"], empty["harmful"]) == (0.0, 1, 0)


def test_judge_identity_follows_the_weights(trained, tmp_path):
    """Other weights under the same classifier.json are another judge: cache keys must differ."""
    out, _ = trained
    first = C.ClassifierJudge(model_path=str(out)).judge_identity()
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "classifier.json").write_bytes((out / "classifier.json").read_bytes())
    (copy / "metrics.json").write_bytes((out / "metrics.json").read_bytes())
    state = load_file(str(out / CE.WEIGHTS))
    state["head.bias"] = state["head.bias"] + 1.0
    save_file(state, str(copy / CE.WEIGHTS))
    assert C.ClassifierJudge(model_path=str(copy)).judge_identity()["revision"] != first["revision"]


def test_bad_artefacts_and_params(trained, tmp_path, pyrit_dir):
    out, _ = trained
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "classifier.json").write_bytes((out / "classifier.json").read_bytes())
    with pytest.raises(UserError, match="weights .* missing"):
        C.ClassifierJudge(model_path=str(broken))
    save_file({"bogus.weight": load_file(str(out / CE.WEIGHTS))["head.weight"]}, str(broken / CE.WEIGHTS))
    with pytest.raises(UserError, match="does not fit the packaged MiniLM"):
        judge_rows(rows_for(TABLE[:1]), "classifier", {"model_path": str(broken)})
    with pytest.raises(UserError, match="judge_model.kind 'svm' is unknown"):
        C.train_classifier(pyrit_dir, tmp_path / "x", kind="svm")
    with pytest.raises(UserError, match="epochs"):
        C.train_classifier(pyrit_dir, tmp_path / "y", **{**TINY, "epochs": 0})
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_training_works_with_autograd_switched_off():
    """models.base.load_model switches autograd off process-wide; fine-tuning must not depend on it."""
    import torch

    model_dir = C.embedding_model_dir()
    enc = CE.tokenize(model_dir, [q for q, _, _ in TABLE[:4]], [a for _, a, _ in TABLE[:4]], 32)
    labels = np.array([[y, 1] for _, _, y in TABLE[:4]])
    torch.set_grad_enabled(False)
    try:
        CE.fit(model_dir, enc, labels, np.ones(labels.shape), [0, 1, 2, 3], 0, 1, 1e-4, 2, "float32")
        assert not torch.is_grad_enabled()  # left as it was found
    finally:
        torch.set_grad_enabled(True)


def test_class_balancing_gives_each_class_half_of_each_heads_weight():
    y = np.array([1, 0, 0, 0, 1, 0])
    w = np.array([1.0, 1.0, 2.0, 1.0, 3.0, 1.0])
    out = CE.balance_classes(y, w)
    assert out[y == 1].sum() == pytest.approx(w.sum() / 2) and out[y == 0].sum() == pytest.approx(w.sum() / 2)
    assert out[4] / out[0] == pytest.approx(3.0)  # within a class the given weights keep their ratio
    # two heads, -1 = no label, rows outside the training mask get 0
    labels = np.array([[1, -1], [0, 1], [0, 0], [-1, 1], [1, 0]])
    weights = np.ones((5, 2))
    train = np.array([True, True, True, True, False])
    bal = CE._balanced_weights(labels, weights, train)
    assert bal[4].tolist() == [0.0, 0.0] and bal[0, 1] == 0.0 and bal[3, 0] == 0.0
    assert bal[:, 0][labels[:, 0] == 1].sum() == pytest.approx(bal[:, 0][labels[:, 0] == 0].sum())
    assert bal[:, 1].sum() == pytest.approx(3.0)  # three training rows carry the compliance label
