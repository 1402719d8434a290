"""The benchmark's code paths at tiny sizes: structure, keys and errors, never timings."""

from __future__ import annotations

import json
import shutil
import sys
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
import torch

from nsm_core.bench import common, runner
from nsm_core.bench.common import (
    BenchError,
    BenchSizes,
    Case,
    ModelSize,
    Result,
    nsm_dims,
    paired_ratio,
    recording_data_bytes,
    scratch_dir,
    time_interleaved,
)
from nsm_core.bench.frame_read import write_synthetic_recording
from nsm_core.bench.memory import run_child
from nsm_core.bench.payload import PAGES, REDUCTION_WORDS, page_figures
from nsm_core.cli.bench import busy_warning
from nsm_core.cli.main import main
from nsm_core.modules import NSMModel
from nsm_core.recording import Recording
from nsm_core.recording.runs import record_nsm

TINY_SIZE = ModelSize(layers=2, states=3, dim=4, tokens=5, heads=2)
TINY = BenchSizes(
    name="tiny",
    overhead_sizes={"default": TINY_SIZE, "large": ModelSize(layers=3, states=4, dim=8, tokens=6, heads=2)},
    overhead_steps={"default": 2, "large": 1},
    overhead_repeats=2,
    frame_size=TINY_SIZE,
    frame_file_bytes={"small": 4_000, "large": 40_000},
    frame_reads=3,
    memory_size=TINY_SIZE,
    memory_steps={"short": 1, "long": 3},
    dashboard_size=ModelSize(layers=2, states=3, dim=4, tokens=5, heads=2),
    dashboard_steps=1,
    dashboard_moves=2,
)
ENGINE_MEASUREMENTS = ["recording_overhead", "frame_read", "memory"]
DiskUsage = namedtuple("DiskUsage", "total used free")


@pytest.fixture
def tiny_sizes(monkeypatch):
    """Make the CLI's full and quick presets tiny."""
    monkeypatch.setattr(runner, "FULL", TINY)
    monkeypatch.setattr(runner, "QUICK", TINY)
    monkeypatch.setattr("nsm_core.cli.bench.FULL", TINY)
    monkeypatch.setattr("nsm_core.cli.bench.QUICK", TINY)


def test_engine_measurements_report_ratios(tmp_path):
    results = runner.run_benchmarks(TINY, threads=1, only=ENGINE_MEASUREMENTS, scratch_parent=tmp_path)

    assert list(results) == ENGINE_MEASUREMENTS
    for name, result in results.items():
        summary = result.to_dict()
        assert summary["ratio"] > 0, name
        assert summary["goal"] in (1.10, 2.0, 1.5), name
        assert isinstance(summary["met"], bool), name
        assert summary["settings"]["torch_threads"] == 1, name
    overhead = results["recording_overhead"].cases
    assert set(overhead) == {"default", "large"}
    assert overhead["large"].figures["final_states_bit_exact"] is True
    assert overhead["default"].figures["steps"] == 2
    assert results["frame_read"].cases["large_vs_small"].figures["large_steps"] > 1
    memory = results["memory"].cases["long_vs_short"].figures
    assert memory["long_steps"] == 3
    assert memory["long_peak_rss_mb"] > 0
    assert list(tmp_path.iterdir()) == []  # scratch files are gone


def test_run_restores_torch_threads(tmp_path):
    before = torch.get_num_threads()
    runner.run_benchmarks(TINY, threads=1, only=["frame_read"], scratch_parent=tmp_path)

    assert torch.get_num_threads() == before


def test_run_rejects_unknown_measurement():
    with pytest.raises(ValueError, match="unknown measurement"):
        runner.run_benchmarks(TINY, threads=1, only=["speed"])


def test_cli_json_names_six_measurements(tiny_sizes, tmp_path, capsys):
    assert main(["bench", "--quick", "--json", "--threads", "1", "--scratch-dir", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)

    assert list(report) == list(runner.MEASUREMENTS)
    assert len(report) == 6
    for name, measurement in report.items():
        assert {"ratio", "goal", "met", "cases", "settings", "note"} <= set(measurement), name
    for name in runner.MEASUREMENTS:
        assert isinstance(report[name]["ratio"], float), name
        for case in report[name]["cases"].values():
            assert {"ratio", "goal", "met", "figures"} == set(case), name


def test_cli_text_report_lists_every_measurement(tiny_sizes, tmp_path, capsys):
    assert main(["bench", "--only", "frame_read", "--threads", "1", "--scratch-dir", str(tmp_path)]) == 0
    output = capsys.readouterr()

    assert "torch threads 1" in output.out
    assert "frame_read" in output.out
    assert "large_vs_small: ratio" in output.out
    assert "measuring frame_read" in output.err


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["bench", "--threads", "0"], "--threads 0 is invalid"),
        (["bench", "--scratch-dir", "missing-folder"], "is not a directory"),
    ],
)
def test_cli_rejects_bad_flag(argv, fragment, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert fragment in capsys.readouterr().err


def test_cli_rejects_unknown_measurement():
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--only", "speed"])
    assert exit_info.value.code == 2


def test_cli_reports_too_little_disk(tiny_sizes, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: DiskUsage(10**9, 10**9 - 1000, 1000))

    assert main(["bench", "--only", "frame_read", "--scratch-dir", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert "only 0.00 GB are free" in error
    assert "--scratch-dir" in error
    assert list(tmp_path.iterdir()) == []


def test_scratch_dir_is_removed_after_error(tmp_path):
    with pytest.raises(RuntimeError, match="inside"):
        with scratch_dir(1, tmp_path) as directory:
            (directory / "partial.nsm").write_bytes(b"x")
            raise RuntimeError("inside")

    assert list(tmp_path.iterdir()) == []


def test_scratch_dir_checks_space_before_writing(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: DiskUsage(10**12, 0, 2 * 10**9))

    with pytest.raises(BenchError, match="needs 2.54 GB free"):
        with scratch_dir(2 * 10**9, tmp_path, "the test"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_interleaving_alternates_order():
    calls: list[str] = []
    candidates = {name: (lambda name=name: calls.append(name)) for name in ("a", "b", "c")}
    prepared: list[str] = []

    seconds = time_interleaved(candidates, repeats=3, warmups=1, before_each=prepared.append)

    # One warm-up round, then rounds in order, reversed, in order.
    assert calls == list("abc") + list("abc") + list("cba") + list("abc")
    assert prepared == calls
    assert {name: len(values) for name, values in seconds.items()} == {"a": 3, "b": 3, "c": 3}


def test_interleaving_rejects_zero_repeats():
    with pytest.raises(ValueError, match="repeats=0"):
        time_interleaved({"a": lambda: None}, repeats=0)


def test_paired_ratio_is_median_of_rounds():
    seconds = {"measured": [2.0, 4.0, 6.0], "reference": [1.0, 1.0, 2.0]}

    # Per-round ratios 2, 4, 3; their median is 3.
    assert paired_ratio(seconds, "measured", "reference") == 3.0


def test_headline_is_case_furthest_from_goal():
    result = Result(title="t", compares="c", cases={
        "near": Case(ratio=1.05, goal=1.10),  # 95 % of its goal
        "far": Case(ratio=2.4, goal=3.0),  # 80 % of its goal
        "unmeasured": Case(ratio=None, goal=2.0),
    })
    summary = result.to_dict()

    assert summary["ratio"] == 1.05
    assert summary["goal"] == 1.10
    assert summary["met"] is True
    assert summary["cases"]["unmeasured"]["met"] is None


def test_case_over_goal_is_not_met():
    assert Case(ratio=2.5, goal=2.0).met is False
    assert Case(ratio=2.0, goal=2.0).met is True


def test_data_bytes_match_a_real_recording(tmp_path):
    size = ModelSize(layers=2, states=3, dim=4, tokens=5, heads=2)
    model = NSMModel(common.nsm_config(size)).eval()
    path = record_nsm(model, torch.arange(10), tmp_path / "r.nsm", token_labels=list("abcdefghij"), num_steps=2)
    recording = Recording.open(path)
    data_bytes = sum(recording.array(name).nbytes for name in recording.fields)

    assert recording.dims == nsm_dims(size, 2)
    assert recording_data_bytes(nsm_dims(size, 2)) == data_bytes


def test_synthetic_recording_is_readable(tmp_path):
    path = write_synthetic_recording(tmp_path / "s.nsm", TINY_SIZE, num_steps=4)
    recording = Recording.open(path)
    frame = recording.frame(step=3, layer=2)

    assert recording.num_steps == 4
    assert frame.routing.shape == (2, 5, 3)  # [H, T, S]
    assert frame.token_attention.shape == (2, 5, 5)  # [H, T, T]
    assert frame.states[0, 0] == 3.0  # the step number marks each step's states
    assert np.all(frame.active)


def test_memory_child_reports_peaks(tmp_path):
    report = run_child(TINY_SIZE, steps=2, threads=1, path=tmp_path / "m.nsm")

    assert report["peak_rss_bytes"] >= report["baseline_rss_bytes"] > 0
    if sys.platform == "linux":
        assert report["peak_since"] == "recording start"
    assert report["file_bytes"] == Path(tmp_path / "m.nsm").stat().st_size


def test_memory_child_failure_is_reported(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")

    with pytest.raises(BenchError, match="failed with exit code 1"):
        run_child(TINY_SIZE, steps=2, threads=1, path=blocker / "m.nsm")


def test_busy_machine_is_flagged():
    assert busy_warning({"load_average_1min": 7.5, "logical_cpus": 2}).startswith("the load average is 7.5 on 2")
    assert busy_warning({"load_average_1min": 1.5, "logical_cpus": 2}) is None
    assert busy_warning({"load_average_1min": None, "logical_cpus": 2}) is None


def test_dashboard_measurements_report_ratios(tmp_path):
    results = runner.run_benchmarks(TINY, threads=1, only=["dashboard_rerun", "live_rerun"], scratch_parent=tmp_path)

    rerun = results["dashboard_rerun"]
    assert set(rerun.cases) == {"default", "large"}
    assert rerun.cases["default"].goal == 2.0
    assert rerun.cases["large"].goal == 3.0
    assert rerun.cases["large"].figures["layers"] == 2
    assert rerun.cases["default"].ratio > 0
    live = results["live_rerun"].cases["default"]
    assert live.figures["rerun_seconds"] > 0
    # rerun_seconds is rounded to 1 ms, so the ratio may differ from it by 0.0005 s / 0.5 s.
    assert live.ratio == pytest.approx(live.figures["rerun_seconds"] / 0.5, abs=0.0011)


def test_large_views_stay_under_payload_cap(tmp_path):
    from app.figures.style import MAX_FIGURE_BYTES, MAX_FIGURE_CELLS

    # 256 states × 256 dims and 200 tokens × 256 states both exceed the cell limit.
    size = ModelSize(layers=2, states=256, dim=256, tokens=200, heads=2)
    assert size.states * size.dim > MAX_FIGURE_CELLS
    assert size.tokens * size.states > MAX_FIGURE_CELLS
    write_synthetic_recording(tmp_path / "large.nsm", size, num_steps=1)

    figures = page_figures(tmp_path)

    assert {page for page, _ in figures} == set(PAGES)
    for (page, key), entry in figures.items():
        assert len(entry["spec"]) <= MAX_FIGURE_BYTES, f"{page} {key}: {len(entry['spec'])} bytes"
    for page, key in [("views/states.py", "states_heatmap"), ("views/routing.py", "routing_heatmap")]:
        assert REDUCTION_WORDS in figures[page, key]["notes"], f"{page} {key} does not state its reduction"
