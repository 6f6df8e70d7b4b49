"""examples/gpt.py end to end in a small configuration: it learns (held-out loss below the
unigram baseline), sampling is deterministic for a key, and resuming from a checkpoint
gives the same losses as an uninterrupted run."""

import importlib.util
import pathlib

import numpy as np
import pytest

import nanofn

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"
SMALL = dict(batch_size=8, context=32, d_model=32, heads=2, layers=1, dropout=0.1,
             learning_rate=1e-2, warmup=5, eval_batches=2, verbose=False)


@pytest.fixture(scope="module")
def gpt():
    spec = importlib.util.spec_from_file_location("example_gpt", EXAMPLES / "gpt.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpt_learns_below_the_unigram_baseline_and_samples_deterministically(gpt, tmp_path):
    out = gpt.main(steps=160, eval_every=80, ckpt_every=160, checkpoint=str(tmp_path / "c.npz"),
                   sample=40, temperature=0.8, top_k=10, **SMALL)
    assert len(out["losses"]) == 160 and np.isfinite(out["losses"]).all()
    assert np.mean(out["losses"][-10:]) < np.mean(out["losses"][:5]) - 1.0
    assert out["held_out_bits"] < out["baseline_bits"] - 0.2, out["curve"]
    assert out["sample"].startswith("The ") and len(out["sample"]) == 4 + 40
    _, apply = gpt.make_gpt(SMALL["context"], SMALL["d_model"], SMALL["heads"],
                            SMALL["layers"], 0.0)
    again = gpt.generate(apply, out["params"], "The ", 40, nanofn.random.key(7), 32,
                         temperature=0.8, top_k=10)
    assert again == gpt.generate(apply, out["params"], "The ", 40, nanofn.random.key(7), 32,
                                 temperature=0.8, top_k=10)


def test_resume_continues_exactly(gpt, tmp_path):
    full = gpt.main(steps=12, eval_every=100, ckpt_every=100, checkpoint=None, **SMALL)
    ckpt = str(tmp_path / "ckpt.npz")
    first = gpt.main(steps=12, eval_every=100, ckpt_every=100, checkpoint=ckpt, stop_at=6,
                     **SMALL)
    rest = gpt.main(steps=12, eval_every=100, ckpt_every=100, checkpoint=ckpt, resume=True,
                    **SMALL)
    np.testing.assert_array_equal(first["losses"] + rest["losses"], full["losses"])
