"""The `make bench` harness (bench/): statistics, verdicts, the C loop, the CLI, and its lab's cleanup.

No speed is asserted here: the bench measures speed and reports it in
bench/report.md.  These tests check that the harness computes and judges
correctly and never leaves a namespace behind.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

BENCH_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")
sys.path.insert(0, BENCH_DIR)

from pvdbench.figure import Figure, Series, interleave, not_measured, verdict  # noqa: E402
from pvdbench.report import render_markdown  # noqa: E402
from pvdbench.stats import median_interval, percentile, ratio_summary, summary  # noqa: E402


def test_percentile_interpolates_and_refuses_empty() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([5.0], 0.99) == 5.0
    with pytest.raises(ValueError):
        percentile([], 0.5)


def test_summary_has_median_spread_and_count() -> None:
    result = summary([3.0, 1.0, 2.0, 10.0])
    assert result["n"] == 4 and result["median"] == 2.5
    assert result["min"] == 1.0 and result["max"] == 10.0
    assert result["p25"] <= result["median"] <= result["p75"]


def test_ratio_summary_pairs_rounds_and_refuses_to_pair_unequal_series() -> None:
    paired = ratio_summary([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
    assert paired["paired_median"] == 2.0 and paired["paired_min"] == 2.0
    unpaired = ratio_summary([2.0, 4.0], [1.0, 2.0, 3.0])
    assert unpaired["paired_median"] is None
    assert unpaired["ratio_of_medians"] == 1.5


@pytest.mark.parametrize(("values", "limit", "lower_is_better", "expected"), [
    ([0.98, 0.99, 1.00, 1.01], 1.02, True, True),      # whole IQR within the limit
    ([1.05, 1.06, 1.07], 1.02, True, False),            # whole IQR beyond it
    ([1.00, 1.01, 1.03, 1.05], 1.02, True, None),       # noise straddles the limit
    ([0.995, 1.0, 1.01], 0.99, False, True),            # higher is better (throughput)
    ([0.90, 0.91, 0.92], 0.99, False, False),
])
def test_verdict_is_met_missed_or_unresolved(values: list[float], limit: float,
                                             lower_is_better: bool, expected: bool | None) -> None:
    met, detail = verdict(values, limit, lower_is_better)
    assert met is expected
    if expected is False:
        assert "misses the limit" in detail
    if expected is None:
        assert "not resolved" in detail


def test_verdict_judges_on_the_confidence_interval_of_the_median() -> None:
    one_outlier = [1.0] * 9 + [1.5]
    assert verdict(one_outlier, 1.02)[0] is True          # 10 pairs: the interval leaves out the extremes
    assert verdict(one_outlier[3:], 1.02)[0] is None      # 7 pairs: only min–max has 95% coverage
    assert "7 pairs" in verdict(one_outlier[3:], 1.02)[1]


def test_median_interval_matches_the_sign_test_table() -> None:
    assert median_interval(list(range(1, 11)))[:2] == (2, 9)      # n = 10: 2nd to 9th
    assert median_interval(list(range(1, 21)))[:2] == (6, 15)     # n = 20: 6th to 15th
    low, high, coverage = median_interval([3.0, 1.0, 2.0])
    assert (low, high) == (1.0, 3.0) and coverage == 0.75          # too few: min–max, said so


def test_quantile_interval_is_the_median_interval_at_one_half_and_judges_a_p90() -> None:
    from pvdbench.figures_launch import quantile_interval, quantile_verdict

    for n in (3, 10, 20, 60):
        values = [float(v) for v in range(1, n + 1)]
        assert quantile_interval(values, 0.5)[:2] == median_interval(values)[:2]
    sixty = [float(v) for v in range(1, 61)]
    assert quantile_interval(sixty, 0.9)[:2] == (49.0, 59.0)    # 60 values: one outlier is left out
    assert quantile_interval(sixty[:40], 0.9)[:2] == (32.0, 40.0)  # 40: the slowest is the end
    assert quantile_verdict(sixty, 0.9, 59.0)[0] is True
    met, detail = quantile_verdict(sixty, 0.9, 40.0)
    assert met is False and "misses the limit" in detail
    met, detail = quantile_verdict(sixty, 0.9, 55.0)
    assert met is None and "not resolved" in detail and "CI of the p90" in detail


def test_interleave_rotates_the_order_each_round() -> None:
    order: list[str] = []
    runners = {name: (lambda n=name: order.append(n) or 1.0) for name in ("a", "b", "c")}
    results = interleave(3, runners)
    assert order == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert all(len(values) == 3 for values in results.values())


def test_report_states_not_measured_and_ratios() -> None:
    measured = Figure(fig_id="x.y", title="X", unit="ns/call", comparisons=[("shim", "none")],
                      series=[Series("none", "ref", [1.0, 2.0]), Series("shim", "subj", [2.0, 4.0])])
    missing = not_measured("z", "Z", "the shim is not installed")
    report = {"finished": "now", "duration_s": 1.0, "rounds": 2, "loadavg_at_end": (0.0, 0.0, 0.0),
              "caveats": ["shared machine"], "figures": [measured.to_dict(), missing.to_dict()],
              "machine": {"cores": 2, "cpu": "cpu", "memory_mib": 1, "kernel": "k", "python": "3",
                          "git_commit": "abc", "loadavg_at_start": (0.0, 0.0, 0.0),
                          "tools": {"glibc": "2.36"}}}
    text = render_markdown(report)
    assert "**Not measured:** the shim is not installed" in text
    assert "| shim / none | 2.000 | 2.000 (2.000–2.000) |" in text
    assert "kernel k" in text and "2 cores" in text


@pytest.fixture(scope="module")
def calls_binary(tmp_path_factory: pytest.TempPathFactory) -> str:
    """bench/calls.c compiled as the bench compiles it."""
    out = str(tmp_path_factory.mktemp("calls") / "calls")
    subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", out,
                    os.path.join(BENCH_DIR, "calls.c")], check=True)
    return out


def test_calls_loop_reports_json(calls_binary: str) -> None:
    proc = subprocess.run([calls_binary, "socket_close", "1000", "--warmup", "10"],
                          capture_output=True, text=True, check=True)
    result = json.loads(proc.stdout)
    assert result["op"] == "socket_close" and result["calls"] == 1000 and result["batches"] == 10
    assert result["ns_per_call"] > 0 and result["mean_ns_per_call"] > 0


@pytest.mark.parametrize("argv", [["bogus", "10"], ["socket_close"], ["socket_close", "-3"],
                                  ["sendto", "10"], ["socket_close", "10", "--what", "1"]])
def test_calls_loop_rejects_bad_usage_with_status_2(calls_binary: str, argv: list[str]) -> None:
    proc = subprocess.run([calls_binary, *argv], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("calls: ")


def test_calls_loop_fails_when_a_call_fails(calls_binary: str) -> None:
    # nothing listens on loopback port 9: the second send gets ECONNREFUSED, which must be fatal
    proc = subprocess.run([calls_binary, "sendto", "100", "--dst", "127.0.0.1", "--port", "9"],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "sendto" in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize("argv", [["--rounds", "1"], ["--only", "calls,nonsense"]])
def test_run_rejects_bad_arguments_with_status_2(argv: list[str]) -> None:
    proc = subprocess.run([sys.executable, os.path.join(BENCH_DIR, "run.py"), *argv],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("bench: ")


def _namespaces() -> set[str]:
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in listing.splitlines() if line.strip()}


@pytest.mark.root
def test_bench_lab_builds_servers_and_removes_everything(calls_binary: str) -> None:
    from pvdbench.lab import SERVER_ADDR, SINK_PORT, BenchLab

    os.makedirs(os.path.join(BENCH_DIR, "out"), exist_ok=True)
    subprocess.run(["cp", calls_binary, BenchLab.calls_binary()], check=True)
    lab = BenchLab(run_id=f"{os.getpid()}t")
    with lab:
        workdir = lab.workdir
        assert {lab.client_ns, lab.server_ns} <= _namespaces()
        assert lab.servers_listening()
        # the client reaches dnsmasq over the veth through its own resolv.conf
        lookup = subprocess.run(["ip", "netns", "exec", lab.client_ns, "getent", "hosts",
                                 "bench.pvdrun.test"], capture_output=True, text=True)
        assert lookup.returncode == 0 and "10.77.0.99" in lookup.stdout
        assert os.path.exists(os.path.join("/etc/netns", lab.client_ns, "resolv.conf"))
        # the UDP sink answers no ICMP: a connected sender keeps sending without errors
        send = subprocess.run(["ip", "netns", "exec", lab.client_ns, calls_binary, "sendto", "2000",
                               "--dst", SERVER_ADDR, "--port", str(SINK_PORT)],
                              capture_output=True, text=True)
        assert send.returncode == 0, send.stderr
    assert not {lab.client_ns, lab.server_ns} & _namespaces()
    assert not os.path.exists(os.path.join("/etc/netns", lab.client_ns))
    assert not os.path.exists(workdir)
    assert all(proc.poll() is not None for proc in lab.processes) and not lab.processes


@pytest.mark.root
def test_bench_lab_is_removed_when_building_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    from pvdbench import lab as lab_module

    def broken_servers(self: lab_module.BenchLab) -> None:
        raise RuntimeError("server failed to start")

    monkeypatch.setattr(lab_module.BenchLab, "start_servers", broken_servers)
    lab = lab_module.BenchLab(run_id=f"{os.getpid()}f")
    with pytest.raises(RuntimeError):
        with lab:
            pass
    assert not {lab.client_ns, lab.server_ns} & _namespaces()
