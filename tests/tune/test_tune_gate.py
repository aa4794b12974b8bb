"""The correctness gate runs the real Triton kernel under the interpreter (tiny shape, few configs)
and must reject a deliberately broken kernel for one config, which is then never stored as best."""

from __future__ import annotations

import math
from typing import ClassVar

import pytest

from accelsim.tune.core import Measurement, tune
from accelsim.tune.gate import Gate, GatedDevice
from accelsim.tune.space import CONFIG_KEYS, Problem, as_tuple
from accelsim.tune.store import ResultStore
from accelsim.tune.strategies import Exhaustive
from kernels.moe.reference import TOLERANCES

TINY = Problem(4, 64, 64, 2, "fp16", 8)
GOOD = dict(zip(CONFIG_KEYS, (16, 64, 64, 1, 4, 2)))
BAD = dict(zip(CONFIG_KEYS, (16, 32, 64, 1, 4, 2)))
RAISES = dict(zip(CONFIG_KEYS, (16, 128, 64, 1, 4, 2)))


class OutOfResources(Exception):
    """Stands in for triton.runtime.errors.OutOfResources (matched by class name)."""


def broken_kernel(**kwargs):
    """The real kernel, except: BAD's output is off by 1% (a subtle tiling bug), RAISES fails to launch."""
    from kernels.moe import fused_moe

    if kwargs["config"] == RAISES:
        raise OutOfResources("out of resource: shared memory, Required: 300000, Hardware limit: 232448")
    out = fused_moe(**kwargs)
    return out * 1.01 if kwargs["config"] == BAD else out


@pytest.fixture(scope="module")
def gate() -> Gate:
    from kernels.moe import triton_impl

    if not triton_impl.INTERPRETED:
        pytest.skip("triton was imported before TRITON_INTERPRET=1 was set")
    return Gate("cpu", seed=3, kernel=broken_kernel)


def test_gate_passes_the_real_kernel_and_rejects_the_broken_config(gate: Gate) -> None:
    good = gate.check(TINY, GOOD)
    assert good.ok and good.status == "ok" and 0 <= good.rel_err < TOLERANCES["fp16"].rel
    bad = gate.check(TINY, BAD)
    assert not bad.ok and bad.status == "wrong"
    assert bad.rel_err == pytest.approx(0.01, rel=0.05)  # the injected 1% error, measured by the gate


def test_a_wrong_config_is_recorded_and_never_the_best(gate: Gate, tmp_path) -> None:
    class FakeTimer:  # BAD would win on time if the gate let it through
        timed = True
        fingerprint: ClassVar[dict[str, str]] = {"device": "fake-timer"}

        def measure(self, problem, config):
            t = {as_tuple(BAD): 1e-6, as_tuple(GOOD): 5e-6}.get(as_tuple(config), 9e-6)
            return Measurement("ok", t, t, t, 3)

    device = GatedDevice(FakeTimer(), gate)
    with ResultStore(tmp_path / "t.sqlite", device.fingerprint) as store:
        result = tune(TINY, Exhaustive([BAD, RAISES, GOOD]), device, sink=store)
        assert result.best_config == GOOD and result.best_time_s == 5e-6
        assert result.not_ok == {"wrong": 1, "out_of_resources": 1}
        stored = store.results(TINY)
        assert stored[as_tuple(BAD)].status == "wrong" and stored[as_tuple(BAD)].rel_err > TOLERANCES["fp16"].rel
        assert math.isnan(stored[as_tuple(BAD)].median_s)
        assert stored[as_tuple(RAISES)].status == "out_of_resources"
        assert "shared memory" in stored[as_tuple(RAISES)].message
        cfg, m = store.best(TINY)
        assert cfg == GOOD and m.median_s == 5e-6


def test_non_finite_output_fails_the_gate(gate: Gate) -> None:
    nan_gate = Gate("cpu", seed=3, kernel=lambda **kw: broken_kernel(**kw) * float("nan"))
    nan_gate._cache = gate._cache  # same inputs and reference: no second reference run
    r = nan_gate.check(TINY, GOOD)
    assert r.status == "wrong" and "non-finite" in r.message


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16", "fp8"])
def test_gate_bound_is_the_kernel_tests_bound(dtype: str) -> None:
    """The gate and the kernel tests read one table: a config the kernel tests would reject (the gate
    once allowed fp8 3e-2 against the tests' 2e-2) must not be timed as correct."""

    def refuse(**kwargs):
        raise RuntimeError("no kernel run needed: only the bound is checked")

    r = Gate("cpu", kernel=refuse).check(Problem(4, 64, 64, 2, dtype, 4), GOOD)
    assert not r.ok and r.tolerance == TOLERANCES[dtype].rel
    assert TOLERANCES["fp8"].rel <= 2e-2  # the kernel tests' fp8 bound before the tables were merged


def test_fp8_block_inputs_carry_block_scales_the_reference_accepts() -> None:
    """--dtype fp8_block: the gate's inputs are 128 x 128 block-quantised weights with their scales and
    block_shape, and the block-fp8 emulation runs on them (the API itself needs an sm_89+ GPU)."""
    import torch

    from accelsim.tune.gate import make_inputs
    from kernels.moe import reference, topk_route

    problem = Problem(4, 256, 160, 2, "fp8_block", 8)
    inputs = make_inputs(problem, "cpu", seed=3)
    assert inputs["quant"] == "fp8_w8a8" and inputs["block_shape"] == (128, 128)
    assert inputs["w1"].dtype == torch.float8_e4m3fn and tuple(inputs["w1_scale"].shape) == (4, 3, 2)
    assert tuple(inputs["w2_scale"].shape) == (4, 2, 2)
    weights, ids = topk_route(inputs["router_logits"], 2, True)
    out = reference.fused_moe_fp8_block_ref(inputs["hidden_states"], inputs["w1"], inputs["w2"], inputs["w1_scale"],
                                            inputs["w2_scale"], weights, ids, inputs["block_shape"])
    assert out.shape == (8, 256) and torch.isfinite(out).all()
