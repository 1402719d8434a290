"""`python -m nsm_core record` and `inspect`: happy paths and usage errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nsm_core.cli.main import main


def test_record_then_inspect_json(tmp_path, capsys):
    out = tmp_path / "x.nsm"
    assert main(["record", "--preset", "nsm", "--input", "the cat sat on the mat", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["inspect", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)

    assert summary["schema_version"] == 1
    assert summary["frames"] == 3  # 1 step × (2 layers + initial)
    assert summary["layers"] == 2
    assert summary["states"] == 8
    assert summary["tokens"] == 22
    assert summary["token_labels"][0][:3] == ["t", "h", "e"]
    assert summary["value_ranges"]["routing"]["nan"] == 0


def test_record_as_subprocess(tmp_path):
    out = tmp_path / "t.nsm"
    result = subprocess.run(
        [sys.executable, "-m", "nsm_core", "record", "--preset", "tutorial", "--out", str(out)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    inspected = subprocess.run(
        [sys.executable, "-m", "nsm_core", "inspect", str(out)], capture_output=True, text=True, check=False
    )
    assert "1 steps × 4 layers" in inspected.stdout
    assert "5 states × 10 dims" in inspected.stdout


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["record", "--states", "0"], "num_states=0"),
        (["record", "--gate", "rnn"], "gate='rnn'"),
        (["record", "--steps", "0"], "--steps 0"),
        (["record", "--input", "ab", "--steps", "5"], "--steps 5 is more than the 2 tokens"),
        (["record", "--preset", "tutorial", "--heads", "2"], "tutorial preset only takes"),
        (["record", "--prune-threshold", "2"], "prune_threshold=2.0"),
    ],
)
def test_record_rejects_bad_flag(tmp_path, capsys, argv, fragment):
    code = main([*argv, "--out", str(tmp_path / "x.nsm")])

    assert code == 2
    assert fragment in capsys.readouterr().err
    assert not (tmp_path / "x.nsm").exists()


def test_record_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "x.nsm"
    out.write_bytes(b"keep me")

    assert main(["record", "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"


def test_record_rejects_non_utf8_input_file(tmp_path, capsys):
    source = tmp_path / "latin1.txt"
    source.write_bytes("café".encode("latin-1"))

    assert main(["record", "--input-file", str(source), "--out", str(tmp_path / "x.nsm")]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_unknown_flag_exits_with_usage_code(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["record", "--colour", "red", "--out", str(tmp_path / "x.nsm")])
    assert exit_info.value.code == 2


def test_inspect_missing_file(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope.nsm")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_inspect_garbage_file(tmp_path, capsys):
    bad = tmp_path / "bad.nsm"
    bad.write_bytes(b"\x00\x01\x02\x03\x04\x05\x06\x07")

    assert main(["inspect", str(bad)]) == 1
    assert "not a recording" in capsys.readouterr().err
