"""Efficiency curves fitted to measured operator times.

Per operator class (an `OpKind` value, or "fused_moe"; also per dtype) the time of one call on the
chip the measurements ran on is modelled as

    t = [ max(t_c (1 + r_half / rows) / e_c, t_m / e_m) + t0 ] * exp(r(z))
    t_c = flops / peak[dtype],  t_m = bytes / mem_bw,  t_roof = max(t_c, t_m)
    z = (log10 t_roof, log10(t_c / t_m), log10 rows)     rows: GEMM M (per expert); inf otherwise

Parametric part (e_c, e_m, t0, r_half): a kernel runs at a fixed fraction of the compute or memory
peak once it is large, and pays a fixed dispatch/launch cost t0; efficiency vs size is then the
saturating curve eff = e * x / (x + t0 e) with x the roofline time. A matrix unit (or a CPU
micro-kernel) works on tiles of rows, so a GEMM with few rows reaches only rows / (rows + r_half)
of the compute rate (a smooth form of `Analytical`'s tile quantisation). Four numbers with a
physical meaning, identifiable from a handful of shapes, and they extrapolate sensibly: a shape
larger than any measured one tends to e, a faster chip sees t0 weigh more (launch overhead does
not shrink with FLOP/s). Fitted on log time (errors are relative) with a soft-L1 loss, so the few
timings that another process on a shared machine disturbed do not drag the curve.

Residual part r(z): what the three numbers miss (cache reuse at mid sizes, tile quantisation at
small GEMM rows, library path switches) is smooth in log space but not parametric. It is
interpolated from the training residuals by Nadaraya-Watson kernel smoothing in z (decades),
r(z) = sum K_i r_i / (sum K_i + PRIOR_WEIGHT), K_i = exp(-|z - z_i|^2 / 2h^2) — the log-space
interpolation AIConfigurator uses (2-neighbour inverse-distance weighting), smoothed because CPU
timings are noisy, and shrunk to 0 away from data so extrapolation falls back to the physics.
The bandwidth h is chosen by leave-one-shape-out error on the training points; "no residual" is
one of the candidates and wins when the residuals are noise.

Kernel configs (tuner rows): the (class, dtype) curve describes the tuned kernel — fitted on the
fastest config measured per shape, which is what a deployment runs and what `predict` uses — and a
config-aware curve adds the configs' parameters (log2 of block sizes, warps, stages) to z, so the
smoother predicts a config at an unseen shape from that config at neighbouring shapes and from
similar configs; that is what ranks configs on held-out shapes (Spearman).

z is chip-relative (roofline time and intensity relative to the ridge point), which is what lets
`accelsim.calibrate.project` carry a curve to a chip that was not measured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

MIN_POINTS = 4  # a curve needs at least as many training points as parameters
MIN_RESIDUAL_POINTS = 8  # below this the residual smoother is not tried
PRIOR_WEIGHT = 0.25  # pseudo-weight of "residual 0": far from data the correction fades out
BANDWIDTHS = (0.08, 0.15, 0.25, 0.4, 0.7)  # candidate kernel widths, decades
EFF_BOUNDS = (1e-4, 4.0)  # e may exceed 1 on a CPU: operands partly in cache beat the DRAM peak
T0_BOUNDS_S = (1e-9, 1.0)
R_HALF_BOUNDS = (1e-3, 1e5)  # rows; the lower bound means "no row effect"
PRIOR_EFF = 0.02  # weight of ln(e) -> 0 against the log-time residuals
ROWS_CAP = 1e6
CFG_SCALES = (0.15, 0.3, 0.6)  # candidate decades of kernel distance per doubling of a config value
CONFIGS = "configs"


def features(t_c: ArrayLike, t_m: ArrayLike, rows: ArrayLike) -> np.ndarray:
    """z = (log10 roofline time [s], log10 t_c/t_m clipped to +-3, log10 rows clipped to [0, 6]);
    inputs broadcast together, output has a trailing axis of 3."""
    t_c, t_m, rows = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (t_c, t_m, rows)))
    t_roof = np.maximum(np.maximum(t_c, t_m), 1e-15)
    u = np.log10(t_roof)
    v = np.clip(np.log10(np.maximum(t_c, 1e-30) / np.maximum(t_m, 1e-30)), -3.0, 3.0)
    w = np.log10(np.clip(np.nan_to_num(rows, posinf=ROWS_CAP), 1.0, ROWS_CAP))
    return np.stack([u, v, w], axis=-1)


def config_matrix(configs: Sequence[Mapping[str, Any]], keys: Sequence[str] | None = None
                  ) -> tuple[tuple[str, ...], np.ndarray]:
    """Kernel configs as numbers: log2 of every numeric parameter (block sizes, warps, stages are
    powers of two, so one unit = one doubling); a parameter a config lacks counts as 0."""
    if keys is None:
        keys = sorted({k for c in configs for k, v in c.items() if isinstance(v, int | float) and v > 0})
    x = np.zeros((len(configs), len(keys)))
    for i, c in enumerate(configs):
        for j, k in enumerate(keys):
            v = c.get(k)
            if isinstance(v, int | float) and v > 0:
                x[i, j] = math.log2(v)
    return tuple(keys), x


@dataclass(frozen=True)
class Curve:
    """One fitted curve; `time_s` is vectorised over broadcastable arrays.

    A config-aware curve (`cfg_keys` set) also smooths over the kernel-config parameters, so it
    can rank configs at a shape it never saw; it needs the config to predict.
    """

    e_c: float
    e_m: float
    t0_s: float
    r_half: float = 0.0  # GEMM rows at which the compute rate halves
    h: float = 0.0  # residual kernel width in decades; 0 = no residual correction
    z: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)), repr=False)
    r: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    n_train: int = 0
    loo_log_err: float = float("nan")  # mean |log error| leave-one-shape-out on the training points
    cfg_keys: tuple[str, ...] = ()
    zc: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    cfg_scale: float = 0.0  # decades of kernel distance per doubling of a config parameter

    def base_time_s(self, t_c: ArrayLike, t_m: ArrayLike, rows: ArrayLike) -> np.ndarray:
        return _base(np.asarray(t_c), np.asarray(t_m), np.asarray(rows), self.e_c, self.e_m, self.t0_s, self.r_half)

    def residual(self, z: np.ndarray, config: Mapping[str, Any] | None = None) -> np.ndarray:
        """Smoothed log residual at feature points z (..., 3) for `config` (config-aware curves)."""
        if self.h <= 0 or len(self.r) == 0:
            return np.zeros(z.shape[:-1])
        flat = z.reshape(-1, 3)
        train = self.z
        if self.cfg_keys:
            if config is None:
                raise ValueError("a config-aware curve needs the kernel config to predict")
            zc = config_matrix([config], self.cfg_keys)[1] * self.cfg_scale
            flat = np.hstack([flat, np.repeat(zc, len(flat), axis=0)])
            train = np.hstack([self.z, self.zc * self.cfg_scale])
        k = _kernel(flat, train, self.h)
        return ((k @ self.r) / (k.sum(axis=1) + PRIOR_WEIGHT)).reshape(z.shape[:-1])

    def time_s(self, t_c: ArrayLike, t_m: ArrayLike, rows: ArrayLike,
               config: Mapping[str, Any] | None = None) -> np.ndarray:
        """Predicted seconds per call for roofline terms t_c, t_m [s] and GEMM rows."""
        return self.base_time_s(t_c, t_m, rows) * np.exp(self.residual(features(t_c, t_m, rows), config))

    def to_dict(self) -> dict[str, Any]:
        d = {"e_c": self.e_c, "e_m": self.e_m, "t0_s": self.t0_s, "r_half": self.r_half, "h_decades": self.h,
             "n_train": self.n_train, "loo_log_err": self.loo_log_err, "z": np.round(self.z, 6).tolist(),
             "r": np.round(self.r, 6).tolist()}
        if self.cfg_keys:
            d.update(cfg_keys=list(self.cfg_keys), zc=np.round(self.zc, 6).tolist(), cfg_scale=self.cfg_scale)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Curve:
        z = np.asarray(d.get("z", []), dtype=np.float64).reshape(-1, 3)
        keys = tuple(d.get("cfg_keys", ()))
        zc = np.asarray(d.get("zc", []), dtype=np.float64).reshape(-1, len(keys)) if keys else np.zeros((0, 0))
        return cls(float(d["e_c"]), float(d["e_m"]), float(d["t0_s"]), float(d.get("r_half", 0.0)),
                   float(d.get("h_decades", 0.0)), z, np.asarray(d.get("r", []), dtype=np.float64),
                   int(d.get("n_train", len(z))), float(d.get("loo_log_err", math.nan)), keys, zc,
                   float(d.get("cfg_scale", 0.0)))


def _base(t_c: np.ndarray, t_m: np.ndarray, rows: np.ndarray, e_c: float, e_m: float, t0: float,
          r_half: float) -> np.ndarray:
    row_factor = 1.0 + r_half / np.maximum(rows, 1.0)  # rows = inf -> 1
    return np.maximum(t_c * row_factor / e_c, t_m / e_m) + t0


def _kernel(a: np.ndarray, b: np.ndarray, h: float) -> np.ndarray:
    # |a - b|^2 expanded: no (n, m, dims) temporary for thousands of tuner rows
    d2 = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * a @ b.T
    return np.exp(-np.maximum(d2, 0.0) / (2 * h * h))


def fit_parametric(t_c: np.ndarray, t_m: np.ndarray, rows: np.ndarray,
                   t: np.ndarray) -> tuple[float, float, float, float]:
    """(e_c, e_m, t0, r_half) minimising a soft-L1 loss on log(pred / measured); a few starts, best kept."""
    from scipy.optimize import least_squares

    log_t = np.log(t)
    lo = np.log([EFF_BOUNDS[0], EFF_BOUNDS[0], T0_BOUNDS_S[0], R_HALF_BOUNDS[0]])
    hi = np.log([EFF_BOUNDS[1], EFF_BOUNDS[1], T0_BOUNDS_S[1], R_HALF_BOUNDS[1]])
    has_rows = bool(np.any(np.isfinite(rows) & (t_c > 0)))

    def resid(x: np.ndarray) -> np.ndarray:
        e_c, e_m, t0, r_half = np.exp(x)
        fit = np.log(_base(t_c, t_m, rows, e_c, e_m, t0, r_half if has_rows else 0.0)) - log_t
        # A weak pull of both efficiencies toward 1: decides the one the data cannot (a class that is
        # memory-bound at every measured shape says nothing about e_c) and is negligible otherwise.
        return np.concatenate([fit, PRIOR_EFF * x[:2]])

    def start(q_c: float | None, q_m: float | None, t0_frac: float, r_half: float) -> np.ndarray:
        # q = None starts that efficiency at 1: max() hides the term that does not bind, so the
        # starts must include each term binding on its own
        e_c = np.quantile(t_c / t, q_c) if q_c is not None and np.any(t_c > 0) else 1.0
        e_m = np.quantile(t_m / t, q_m) if q_m is not None and np.any(t_m > 0) else 1.0
        x = np.log([max(e_c, 1e-3), max(e_m, 1e-3), max(t0_frac * t.min(), 2e-9), r_half])
        return np.clip(x, lo + 1e-9, hi - 1e-9)

    best = None
    for x0 in (start(0.9, 0.9, 0.5, 1e-3), start(0.9, 0.9, 0.5, 16.0), start(0.5, 0.5, 0.1, 64.0),
               start(None, 0.5, 0.5, 16.0), start(0.5, None, 0.5, 16.0)):
        res = least_squares(resid, x0, bounds=(lo, hi), loss="soft_l1", f_scale=0.05,
                            x_scale=1.0, xtol=1e-8, ftol=1e-10, max_nfev=200)
        if best is None or res.cost < best.cost:
            best = res
    assert best is not None
    e_c, e_m, t0, r_half = np.exp(best.x)
    return float(e_c), float(e_m), float(t0), float(r_half) if has_rows else 0.0


def fit_curve(t_c: ArrayLike, t_m: ArrayLike, rows: ArrayLike, t: ArrayLike,
              configs: Sequence[Mapping[str, Any]] | None = None, groups: Sequence[Any] | None = None) -> Curve:
    """Fit one curve to measured seconds `t` (1-D arrays of equal length, all t > 0).

    configs: one kernel config per point -> a config-aware curve; groups: the shape of each point,
    so the residual's bandwidth is chosen leaving a whole shape out (as the held-out split does)."""
    t_c, t_m, rows, t = (np.asarray(x, dtype=np.float64).ravel() for x in (t_c, t_m, rows, t))
    if len(t) < MIN_POINTS:
        raise ValueError(f"a curve needs >= {MIN_POINTS} points, got {len(t)}")
    if not np.all(t > 0):
        raise ValueError("measured times must be > 0")
    e_c, e_m, t0, r_half = fit_parametric(t_c, t_m, rows, t)
    r = np.log(t) - np.log(_base(t_c, t_m, rows, e_c, e_m, t0, r_half))
    z = features(t_c, t_m, rows)
    keys, zc = config_matrix(configs) if configs else ((), np.zeros((len(t), 0)))
    group_ids = np.unique(np.asarray(groups if groups is not None else np.arange(len(t)), dtype=str),
                          return_inverse=True)[1]
    same = group_ids[:, None] == group_ids[None, :]
    best = (0.0, 0.0, float(np.mean(np.abs(r))))  # (h, cfg_scale, leave-one-out error)
    if len(t) >= MIN_RESIDUAL_POINTS:
        for h in BANDWIDTHS:
            for scale in (CFG_SCALES if keys else (0.0,)):
                k = _kernel(*(2 * [np.hstack([z, zc * scale])]), h)
                k[same] = 0.0
                err = float(np.mean(np.abs(r - (k @ r) / (k.sum(axis=1) + PRIOR_WEIGHT))))
                if err < best[2] - 1e-4:  # a smoother must earn its place
                    best = (h, scale, err)
    h, scale, err = best
    if h == 0.0:
        return Curve(e_c, e_m, t0, r_half, n_train=len(t), loo_log_err=err)
    return Curve(e_c, e_m, t0, r_half, h, z, r, len(t), err, keys, zc if keys else np.zeros((0, 0)), scale)


def curve_key(op_class: str, dtype: str | None = None, configs: bool = False) -> str:
    """'gemm', 'gemm|bf16' (the tuned kernel) or 'gemm|bf16|configs' (config-aware)."""
    return "|".join([op_class, *([dtype] if dtype else []), *([CONFIGS] if configs and dtype else [])])


def fit_curves(classes: Sequence[str], dtypes: Sequence[str], configs: Sequence[Mapping[str, Any]],
               units: Sequence[str], t_c: np.ndarray, t_m: np.ndarray, rows: np.ndarray,
               t: np.ndarray) -> dict[str, Curve]:
    """Curves per class and per (class, dtype) with >= MIN_POINTS points. Where rows carry kernel
    configs, those curves describe the tuned kernel (per shape, the fastest config measured) and a
    config-aware curve 'class|dtype|configs' is fitted on every row; `units` names each row's shape."""
    groups: dict[str, list[int]] = {}
    for i, (c, d) in enumerate(zip(classes, dtypes)):
        groups.setdefault(curve_key(c), []).append(i)
        groups.setdefault(curve_key(c, d), []).append(i)
    out = {}
    for key in sorted(groups):
        idx = groups[key]
        with_cfg = any(configs[i] for i in idx)
        if with_cfg:
            fastest: dict[str, int] = {}
            for i in idx:
                if units[i] not in fastest or t[i] < t[fastest[units[i]]]:
                    fastest[units[i]] = i
            if "|" in key and len(idx) >= MIN_POINTS and len(fastest) >= 2:
                sel = np.asarray(idx)
                out[f"{key}|{CONFIGS}"] = fit_curve(t_c[sel], t_m[sel], rows[sel], t[sel], [configs[i] for i in idx],
                                                    [units[i] for i in idx])
            idx = sorted(fastest.values())
        if len(idx) >= MIN_POINTS:
            sel = np.asarray(idx)
            out[key] = fit_curve(t_c[sel], t_m[sel], rows[sel], t[sel])
    return out


# A format without its own curve borrows the curve of the next wider format (as chips fall back).
_WIDER = {"fp4": ("fp8", "bf16"), "fp8": ("bf16",), "int8": ("fp8", "bf16")}


def pick_curve(curves: Mapping[str, Curve], op_class: str, dtype: str,
               with_config: bool = False) -> tuple[str, Curve] | None:
    """The most specific curve: config-aware (when the caller has a config), that dtype's, the next
    wider measured dtype's, then the class's pooled curve; None when the class was not measured."""
    keys = [curve_key(op_class, dtype, configs=True)] if with_config else []
    keys += [curve_key(op_class, dtype)] + [curve_key(op_class, d) for d in _WIDER.get(dtype, ())]
    for key in [*keys, curve_key(op_class)]:
        if key in curves:
            return key, curves[key]
    return None
