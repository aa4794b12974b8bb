"""Speculative decoding and image prompts in the simulator against predict's costing of the same
modes (accelsim.modes): the saturated throughput gain and the lone-request TTFT growth."""

from __future__ import annotations

import numpy as np
import pytest

from accelsim.errors import UserError
from accelsim.graph import Parallel, Precision
from accelsim.modes import Modes, parse_spec_decode
from accelsim.perf import HwVec
from accelsim.predict import llm_metrics
from accelsim.serve.cluster import simulate
from accelsim.serve.config import FailureModel, ReplicaGroup, SimConfig, Traffic
from accelsim.spec import load_chip, load_model
from accelsim.stacks import load_stack


def _sim(group: ReplicaGroup, traffic: Traffic, duration: float) -> dict:  # type: ignore[type-arg]
    return simulate(SimConfig(groups=(group,), traffic=traffic, duration_s=duration,
                              failures=FailureModel.none())).summary


def test_spec_decode_gain_in_the_simulator_is_predicts() -> None:
    spec = "mtp=2,accept=0.8"
    traffic = Traffic(rate_per_s=100, input_len=500, output_len=400, length_cv=0)  # saturated: 64 seqs decode
    plain = _sim(ReplicaGroup("h200-sxm", "llama3-8b", max_seqs=64), traffic, 120)
    fast = _sim(ReplicaGroup("h200-sxm", "llama3-8b", max_seqs=64, spec_decode=spec), traffic, 120)
    args = (HwVec.from_chips([load_chip("h200-sxm")], shape=(1,)), load_model("llama3-8b"), Parallel(1),
            Precision.for_serving("bf16"), 500, 400, np.array([64.0]), load_stack())
    gain = float(llm_metrics(*args, Modes(spec=parse_spec_decode(spec))).throughput_replica[0]
                 / llm_metrics(*args).throughput_replica[0])
    assert gain > 1.3
    assert fast["throughput_tokens_per_s"] / plain["throughput_tokens_per_s"] == pytest.approx(gain, rel=0.06)


def test_image_tokens_lengthen_ttft_as_predict_says() -> None:
    g = ReplicaGroup("h200-sxm", "llama4-scout", tp=4, dtype="fp8")
    lone = dict(rate_per_s=0.2, input_len=500, output_len=20, length_cv=0)  # requests never overlap
    text, image = (_sim(g, Traffic(**lone, image_tokens=n), 60)["ttft_p50_s"] for n in (0, 576))
    args = (HwVec.from_chips([load_chip("h200-sxm")], shape=(1,)), load_model("llama4-scout"), Parallel(4),
            Precision.for_serving("fp8"), 500, 20, np.array([1.0]), load_stack())
    growth = float(llm_metrics(*args, Modes(image_tokens=576)).ttft_s[0] / llm_metrics(*args).ttft_s[0])
    assert image / text == pytest.approx(growth, rel=0.1)
    assert image > text * 1.3


def test_bad_modes_in_a_group_are_one_user_error() -> None:
    with pytest.raises(UserError, match="--spec-decode"):
        ReplicaGroup("h200-sxm", "llama3-8b", spec_decode="mtp=2").validate()
    with pytest.raises(UserError, match="vision encoder"):
        _sim(ReplicaGroup("h200-sxm", "llama3-8b"), Traffic(rate_per_s=1, image_tokens=144), 1)
