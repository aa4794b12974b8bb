"""What a run records: per-request timestamps (NumPy arrays, not objects), site time series in
fixed bins, counters; and the summary computed from them at the end.

Power is accelerator power only (server overhead and PUE belong to the planner): every chip draws
its idle power all the time, failed chips included (assumed: a failed node stays powered until
repaired), plus the excess of each step's spine-predicted energy over idle during the step.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from accelsim.io import atomic_open
from accelsim.serve.workload import Stream

TIMESERIES_FIELDS = ("t_s", "power_w", "tokens_per_s", "requests_in_system", "chips_up")


class Level:
    """A piecewise-constant quantity (requests in system, chips up) integrated over time into bins."""

    __slots__ = ("bin_s", "bins", "t", "total", "value")

    def __init__(self, bin_s: float, value: float = 0.0) -> None:
        self.bin_s, self.value, self.t, self.total = bin_s, value, 0.0, 0.0
        self.bins: list[float] = []

    def add(self, t: float, delta: float) -> None:
        if self.value and t > self.t:
            spread(self.bins, self.bin_s, self.t, t, self.value * (t - self.t))
            self.total += self.value * (t - self.t)
        self.t = t
        self.value += delta


def spread(bins: list[float], bin_s: float, t0: float, t1: float, amount: float) -> None:
    """Add `amount`, spread uniformly over [t0, t1], into fixed bins (grown on demand)."""
    b0 = int(t0 / bin_s)
    b1 = int(t1 / bin_s)
    if b1 >= len(bins):
        bins.extend([0.0] * (b1 + 1 - len(bins)))
    if b0 == b1 or t1 <= t0:
        bins[b0] += amount
        return
    rate = amount / (t1 - t0)
    bins[b0] += rate * ((b0 + 1) * bin_s - t0)
    for b in range(b0 + 1, b1):
        bins[b] += rate * bin_s
    bins[b1] += rate * (t1 - b1 * bin_s)


class Recorder:
    """Everything the replicas, router and failure processes report during a run."""

    def __init__(self, stream: Stream, ranking_arrival_s: np.ndarray, ranking_samples: int, bin_s: float,
                 total_chips: int, idle_w_total: float) -> None:
        n = len(stream)
        self.stream = stream
        self.bin_s = bin_s
        self.first_s = np.full(n, np.nan)
        self.finish_s = np.full(n, np.nan)
        self.replica = np.full(n, -1, dtype=np.int32)
        self.preemptions = np.zeros(n, dtype=np.int32)
        self.retries = np.zeros(n, dtype=np.int32)
        self.rk_arrival_s = ranking_arrival_s
        self.rk_finish_s = np.full(len(ranking_arrival_s), np.nan)
        self.rk_samples = ranking_samples
        self.in_system = Level(bin_s)
        self.chips_up = Level(bin_s, float(total_chips))
        self.total_chips = total_chips
        self.idle_w_total = idle_w_total
        self.excess_j: list[float] = []  # energy above idle, per bin
        self.tokens: list[float] = []  # output tokens generated, per bin
        self.tokens_total = 0
        self.tokens_lost = 0  # generated, then lost with a failed replica
        self.completed = 0
        self.rejected = 0
        self.rk_completed = 0
        self.rk_samples_done = 0
        self.interruptions: dict[str, int] = {}
        self.preemption_log: list[tuple[float, int, int, int]] = []  # (time, replica, step, request)
        self.settled = 0  # requests completed or rejected (the drain criterion)
        self.on_settled: Any = None

    # ---- events -------------------------------------------------------------------------------
    def step(self, t0: float, t1: float, excess_j: float, tokens: int) -> None:
        """A replica step over [t0, t1]: energy above idle, output tokens generated (counted at t1)."""
        b, bins = int(t0 / self.bin_s), self.excess_j
        if b == int(t1 / self.bin_s) and b < len(bins):  # the common case: inside one existing bin
            bins[b] += excess_j
        else:
            spread(bins, self.bin_s, t0, t1, excess_j)
        if tokens:
            b, bins = int(t1 / self.bin_s), self.tokens
            if b >= len(bins):
                bins.extend([0.0] * (b + 1 - len(bins)))
            bins[b] += tokens
            self.tokens_total += tokens

    def finished(self, idx: int, t: float, replica: int, now: float | None = None) -> None:
        """Request `idx` finished at t; it leaves the replica at `now` (default t; earlier than t only
        for a pipeline-parallel replica, whose last token still drains through the stages after the
        replica has moved on, and the in-system level must advance in simulation-time order)."""
        self.finish_s[idx] = t
        self.replica[idx] = replica
        self.completed += 1
        self.in_system.add(t if now is None else now, -1)
        self._settle()

    def reject(self, t: float) -> None:
        self.rejected += 1
        self.in_system.add(t, -1)
        self._settle()

    def ranking_done(self, idx: int, t: float) -> None:
        self.rk_finish_s[idx] = t
        self.rk_completed += 1
        self.rk_samples_done += self.rk_samples
        self._settle()

    def failure(self, t: float, component: str, chips: int) -> None:
        self.interruptions[component] = self.interruptions.get(component, 0) + 1
        self.chips_up.add(t, -chips)

    def repaired(self, t: float, chips: int) -> None:
        self.chips_up.add(t, chips)

    def _settle(self) -> None:
        self.settled += 1
        if self.on_settled is not None:
            self.on_settled()

    # ---- results ------------------------------------------------------------------------------
    def close(self, horizon_s: float) -> None:
        self.in_system.add(horizon_s, 0)
        self.chips_up.add(horizon_s, 0)
        n_bins = max(math.ceil(horizon_s / self.bin_s), 1)
        for bins in (self.excess_j, self.tokens, self.in_system.bins, self.chips_up.bins):
            bins.extend([0.0] * (n_bins - len(bins)))
            del bins[n_bins:]

    def ttft_s(self) -> np.ndarray:
        return self.first_s - self.stream.arrival_s

    def tpot_s(self) -> np.ndarray:
        out = self.stream.output_len
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(out > 1, (self.finish_s - self.first_s) / (out - 1), np.nan)

    def summary(self, horizon_s: float, slo_ttft_s: float, slo_tpot_s: float, slo_ranking_s: float) -> dict[str, Any]:
        done = ~np.isnan(self.finish_s)
        ttft, tpot = self.ttft_s()[done], self.tpot_s()[done]
        lat = (self.finish_s - self.stream.arrival_s)[done]
        ok = (ttft <= slo_ttft_s) & ~(tpot > slo_tpot_s)  # a 1-token request has no TPOT
        good_tokens = float(self.stream.output_len[done][ok].sum())
        excess = float(sum(self.excess_j))
        mean_power = self.idle_w_total + excess / horizon_s
        arrived = len(self.stream)
        out: dict[str, Any] = {
            "duration_s": horizon_s,
            "requests_arrived": arrived,
            "requests_completed": int(done.sum()),
            "requests_rejected": self.rejected,
            "throughput_tokens_per_s": self.tokens_total / horizon_s,
            "goodput_tokens_per_s": good_tokens / horizon_s,
            "slo_attainment": float(ok.sum() / arrived) if arrived else math.nan,
            "ttft_p50_s": _pct(ttft, 50), "ttft_p99_s": _pct(ttft, 99), "ttft_mean_s": _mean(ttft),
            "tpot_p50_s": _pct(tpot, 50), "tpot_p99_s": _pct(tpot, 99), "tpot_mean_s": _mean(tpot),
            "latency_p50_s": _pct(lat, 50), "latency_p99_s": _pct(lat, 99), "latency_mean_s": _mean(lat),
            "mean_requests_in_system": self.in_system.total / horizon_s,
            "preemptions": int(self.preemptions.sum()),
            "retries": int(self.retries.sum()),
            "tokens_lost_to_failures": self.tokens_lost,
            "mean_power_w": mean_power,
            "energy_j": mean_power * horizon_s,
            "availability": self.chips_up.total / (self.total_chips * horizon_s),
            "interruptions": sum(self.interruptions.values()),
            "interruptions_by_component": dict(sorted(self.interruptions.items())),
        }
        if len(self.rk_arrival_s):
            rdone = ~np.isnan(self.rk_finish_s)
            rlat = (self.rk_finish_s - self.rk_arrival_s)[rdone]
            out.update({
                "ranking_requests_arrived": len(self.rk_arrival_s),
                "ranking_requests_completed": int(rdone.sum()),
                "ranking_samples_per_s": self.rk_samples_done / horizon_s,
                "ranking_latency_p50_s": _pct(rlat, 50), "ranking_latency_p99_s": _pct(rlat, 99),
                "ranking_slo_attainment": float((rlat <= slo_ranking_s).sum() / len(self.rk_arrival_s)),
            })
        return out

    def timeseries(self) -> Iterator[dict[str, float]]:
        """One row per bin (keys TIMESERIES_FIELDS), generated: a million bins never exist as dicts at once."""
        b = self.bin_s
        return ({"t_s": i * b, "power_w": self.idle_w_total + e / b, "tokens_per_s": k / b,
                 "requests_in_system": q / b, "chips_up": u / b}
                for i, (e, k, q, u) in enumerate(zip(self.excess_j, self.tokens, self.in_system.bins,
                                                     self.chips_up.bins)))

    def write(self, out_dir: str | os.PathLike[str]) -> list[str]:
        """requests.csv (one row per LLM request) and timeseries.csv, each written atomically."""
        s = self.stream
        ttft, tpot = self.ttft_s(), self.tpot_s()
        cols = {"id": np.arange(len(s)), "arrival_s": s.arrival_s, "input_len": s.input_len,
                "output_len": s.output_len, "replica": self.replica, "first_token_s": self.first_s,
                "finish_s": self.finish_s, "ttft_s": ttft, "tpot_s": tpot,
                "latency_s": self.finish_s - s.arrival_s, "preemptions": self.preemptions, "retries": self.retries}
        req_path = os.path.join(out_dir, "requests.csv")
        with atomic_open(req_path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            for lo in range(0, len(s), 65536):  # in chunks: a million rows never exist as lists at once
                w.writerows(zip(*(np.asarray(c[lo:lo + 65536]).tolist() for c in cols.values())))
        ts_path = os.path.join(out_dir, "timeseries.csv")
        with atomic_open(ts_path, "w", newline="", encoding="utf-8") as fh:
            ts = csv.DictWriter(fh, fieldnames=TIMESERIES_FIELDS)
            ts.writeheader()
            ts.writerows(self.timeseries())
        return [req_path, ts_path]


def _pct(x: np.ndarray, q: float) -> float:
    x = x[~np.isnan(x)]
    return float(np.percentile(x, q)) if len(x) else math.nan


def _mean(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(x.mean()) if len(x) else math.nan
