"""``linernotes generate`` on a checkpoint whose weights are a pickle: one line, no traceback."""

from __future__ import annotations

import pickle
import shutil

from linernotes.cli.main import main


def test_pickled_weights_are_refused_with_one_line(tiny_fp32, tmp_path, capsys):
    checkpoint = tmp_path / "pickled"
    shutil.copytree(tiny_fp32, checkpoint)
    (checkpoint / "model.safetensors").unlink()
    # Not tensors: torch's weights-only loader refuses it (loading it in full could run code).
    (checkpoint / "pytorch_model.bin").write_bytes(pickle.dumps({"weights": shutil.rmtree}))
    assert main(["generate", str(checkpoint), "review", "--genre", "Rock", "--score", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"linernotes generate: error: {checkpoint}: weights or tokenizer could not be loaded"
    )
    assert "UnpicklingError" in err and "Traceback" not in err
