"""Efficiency curves fitted to measured operator times.

Per operator class (an `OpKind` value, or "fused_moe"; also per dtype) the time of one call on the
chip the measurements ran on is modelled as

    t = [ max(t_c (1 + r_half / rows) / e_c, t_m (1 + g_half / g) / e_m) + t0 ] * exp(r(z))
    t_c = flops / peak[dtype],  t_m = bytes / mem_bw,  t_roof = max(t_c, t_m)
    z = (log10 t_roof, log10(t_c / t_m), log10 rows, log10 g)
    rows: GEMM M (per expert); inf otherwise.  g: bytes of one randomly gathered row
    (`Op.gather_bytes`, embedding bags: dim x row bytes); 0 for streaming access (factor 1, z = 0)

Parametric part (e_c, e_m, t0, r_half, g_half): a kernel runs at a fixed fraction of the compute or memory
peak once it is large, and pays a fixed dispatch/launch cost t0; efficiency vs size is then the
saturating curve eff = e * x / (x + t0 e) with x the roofline time. A matrix unit (or a CPU
micro-kernel) works on tiles of rows, so a GEMM with few rows reaches only rows / (rows + r_half)
of the compute rate (a smooth form of `Analytical`'s tile quantisation). A gather pays a fixed
cost per row (index load, address arithmetic, a partly used cache line) on top of its bytes:
per row g / (e_m bw) + g_half / (e_m bw), i.e. it reaches g / (g + g_half) of the memory rate —
the memory-side twin of r_half, fitted only for classes that gather. Numbers with a
physical meaning, identifiable from a handful of shapes, and they extrapolate sensibly: a shape
larger than any measured one tends to e, a faster chip sees t0 weigh more (launch overhead does
not shrink with FLOP/s). Fitted on log time (errors are relative) with a soft-L1 loss, so the few
timings that another process on a shared machine disturbed do not drag the curve.

Residual part r(z): what the parametric numbers miss (cache reuse at mid sizes, tile quantisation at
small GEMM rows, library path switches) is smooth in log space but not parametric. The gathered
row size is a coordinate because cache reuse depends on it: on the 1-thread EPYC CPU
(hwmodels/measured/cpu-amd-epyc-1thread_default_2026-11-22.csv) bags whose rows stay in cache
reach ~20 GB/s with 512-byte rows but ~7-10 GB/s with 128-byte rows at the same bytes, while
bags beyond the cache run at ~6-7 GB/s for both; without the coordinate the two row sizes share
one correction (held-out embedding-bag error, 5 seeds pooled: median 11.0% -> 7.4%, p90 43% ->
30%). There the fit puts g_half at its lower bound (no per-row cost beyond the cache; the
in-cache difference is the residual's), so the coordinate, not g_half, carries that gain. r(z) is
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

z is chip-relative (roofline time and intensity relative to the ridge point; row counts and
row bytes are properties of the operator), which is what lets
`accelsim.calibrate.project` carry a curve to a chip that was not measured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

MIN_POINTS = 4  # a curve needs at least as many training points as parameters
MIN_RESIDUAL_POINTS = 8  # below this the residual smoother is not tried
PRIOR_WEIGHT = 0.25  # pseudo-weight of "residual 0": far from data the correction fades out
# Training points farther than KERNEL_CUT kernel widths from every query point (in any one
# coordinate) are skipped: each would weigh < exp(-KERNEL_CUT^2 / 2) = 1e-14, far below PRIOR_WEIGHT.
KERNEL_CUT = 8.0
# Residuals remembered per curve, for queries of at most MEMO_ROWS points (a search asks the same
# operator shapes many times: per layout, per band edge, compute and memory side)
MEMO_SIZE, MEMO_ROWS = 1024, 1024
SMOOTH_BLOCK = 512  # query points smoothed together (a large grid is cut into sorted blocks)
BANDWIDTHS = (0.08, 0.15, 0.25, 0.4, 0.7)  # candidate kernel widths, decades
EFF_BOUNDS = (1e-4, 4.0)  # e may exceed 1 on a CPU: operands partly in cache beat the DRAM peak
T0_BOUNDS_S = (1e-9, 1.0)
R_HALF_BOUNDS = (1e-3, 1e5)  # rows; the lower bound means "no row effect"
G_HALF_BOUNDS = (1e-3, 1e5)  # bytes per gathered row; the lower bound means "no per-row cost"
PRIOR_EFF = 0.02  # weight of ln(e) -> 0 against the log-time residuals
ROWS_CAP = 1e6
CFG_SCALES = (0.15, 0.3, 0.6)  # candidate decades of kernel distance per doubling of a config value
CONFIGS = "configs"
N_FEATURES = 4  # columns of z
ROOFLINE_COORDS, DIMS_COORDS = "roofline", "dims"


def features(t_c: ArrayLike, t_m: ArrayLike, rows: ArrayLike, gather: ArrayLike = 0.0) -> np.ndarray:
    """z = (log10 roofline time [s], log10 t_c/t_m clipped to +-3, log10 rows clipped to [0, 6],
    log10 gathered-row bytes clipped to [0, 6] (0 for streaming access)); inputs broadcast
    together, output has a trailing axis of N_FEATURES."""
    t_c, t_m, rows, gather = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (t_c, t_m, rows, gather)))
    t_roof = np.maximum(np.maximum(t_c, t_m), 1e-15)
    u = np.log10(t_roof)
    v = np.clip(np.log10(np.maximum(t_c, 1e-30) / np.maximum(t_m, 1e-30)), -3.0, 3.0)
    w = np.log10(np.clip(np.nan_to_num(rows, posinf=ROWS_CAP), 1.0, ROWS_CAP))
    g = np.log10(np.clip(gather, 1.0, ROWS_CAP))
    return np.stack([u, v, w, g], axis=-1)


def dim_features(dims: Sequence[ArrayLike]) -> np.ndarray:
    """z = log10 of each operator dimension (`Op.dims`, clipped to >= 1), broadcast together; output
    has a trailing axis of len(dims). Interpolating in the shape itself (GEMM m, n, k ...) follows
    what a kernel library's tile and wave choices depend on: on the H100 bf16 GEMM table a kernel
    smoother in (log m, log n, log k) predicts held-out (n, k) shapes to a 4.9% median error, where the
    roofline coordinates reach 14%."""
    arrs = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in dims))
    return np.stack([np.log10(np.maximum(a, 1.0)) for a in arrs], axis=-1)


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
    z: np.ndarray = field(default_factory=lambda: np.zeros((0, N_FEATURES)), repr=False)
    r: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    n_train: int = 0
    loo_log_err: float = float("nan")  # mean |log error| leave-one-shape-out on the training points
    cfg_keys: tuple[str, ...] = ()
    zc: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    cfg_scale: float = 0.0  # decades of kernel distance per doubling of a config parameter
    g_half: float = 0.0  # gathered-row bytes at which a gather's memory rate halves (per-row cost)
    coords: str = ROOFLINE_COORDS  # residual coordinates: ROOFLINE_COORDS (`features`) or DIMS_COORDS (`dim_features`)
    w: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)  # point weights; empty = all 1
    _memo: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def compact(self, cell: float = 0.5) -> Curve:
        """The same curve with its residual points binned into cells of `cell` x h decades (mean
        residual per cell, weighted by its point count): the smoother at width h barely changes,
        the stored points shrink to the occupied cells. Config-aware curves are returned as is."""
        if self.h <= 0 or len(self.r) == 0 or self.cfg_keys:
            return self
        w = self.w if len(self.w) else np.ones(len(self.r))
        cells = np.floor(self.z / (cell * self.h)).astype(np.int64)
        _, inv = np.unique(cells, axis=0, return_inverse=True)
        inv = inv.ravel()
        n = inv.max() + 1
        wsum = np.bincount(inv, weights=w, minlength=n)
        z = np.stack([np.bincount(inv, weights=w * self.z[:, j], minlength=n) for j in range(self.z.shape[1])],
                     axis=1) / wsum[:, None]
        r = np.bincount(inv, weights=w * self.r, minlength=n) / wsum
        return replace(self, z=z, r=r, w=wsum)

    def base_time_s(self, t_c: ArrayLike, t_m: ArrayLike, rows: ArrayLike, gather: ArrayLike = 0.0) -> np.ndarray:
        return _base(np.asarray(t_c), np.asarray(t_m), np.asarray(rows), np.asarray(gather), self.e_c, self.e_m,
                     self.t0_s, self.r_half, self.g_half)

    def residual(self, z: np.ndarray, config: Mapping[str, Any] | None = None) -> np.ndarray:
        """Smoothed log residual at feature points z (..., N_FEATURES) for `config` (config-aware
        curves). A curve stored before z had the gather column uses the leading columns only.
        Remembered per query (bounded), so repeated operator shapes cost one evaluation."""
        if self.h <= 0 or len(self.r) == 0:
            return np.zeros(z.shape[:-1])
        flat = np.ascontiguousarray(z.reshape(-1, z.shape[-1])[:, :self.z.shape[1]], dtype=np.float64)
        if len(flat) > MEMO_ROWS:
            return self._smooth(flat, config).reshape(z.shape[:-1])
        key = (flat.shape, flat.tobytes(), None if config is None else repr(sorted(config.items())))
        hit = self._memo.get(key)
        if hit is None:
            hit = self._smooth(flat, config)
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = hit
        return hit.reshape(z.shape[:-1])

    def _smooth(self, flat: np.ndarray, config: Mapping[str, Any] | None) -> np.ndarray:
        # operator shapes repeat across a batch grid: smooth each distinct point once
        uniq, inv = _unique_rows(flat)
        if len(uniq) < len(flat):
            return self._smooth(uniq, config)[inv]
        if len(flat) > SMOOTH_BLOCK:  # sorted rows in blocks: each block's box holds few training points
            order = np.lexsort(flat.T[::-1])
            out = np.empty(len(flat))
            for i in range(0, len(flat), SMOOTH_BLOCK):
                idx = order[i:i + SMOOTH_BLOCK]
                out[idx] = self._smooth(flat[idx], config)
            return out
        train = self.z
        if self.cfg_keys:
            if config is None:
                raise ValueError("a config-aware curve needs the kernel config to predict")
            zc = config_matrix([config], self.cfg_keys)[1] * self.cfg_scale
            flat = np.hstack([flat, np.repeat(zc, len(flat), axis=0)])
            train = np.hstack([self.z, self.zc * self.cfg_scale])
        w = self.w if len(self.w) else np.ones(len(self.r))
        cut = KERNEL_CUT * self.h
        near = np.all((train >= flat.min(axis=0) - cut) & (train <= flat.max(axis=0) + cut), axis=1)
        k = _kernel(flat, train[near], self.h) * w[near][None, :]
        return (k @ self.r[near]) / (k.sum(axis=1) + PRIOR_WEIGHT)

    def residual_reference(self, z: np.ndarray, config: Mapping[str, Any] | None = None) -> np.ndarray:
        """`residual` over every training point, unpruned and not remembered (the definition; tests)."""
        if self.h <= 0 or len(self.r) == 0:
            return np.zeros(z.shape[:-1])
        flat = z.reshape(-1, z.shape[-1])[:, :self.z.shape[1]]
        train = self.z
        if self.cfg_keys:
            zc = config_matrix([config or {}], self.cfg_keys)[1] * self.cfg_scale
            flat = np.hstack([flat, np.repeat(zc, len(flat), axis=0)])
            train = np.hstack([self.z, self.zc * self.cfg_scale])
        k = _kernel(flat, train, self.h)
        if len(self.w):
            k = k * self.w[None, :]
        return ((k @ self.r) / (k.sum(axis=1) + PRIOR_WEIGHT)).reshape(z.shape[:-1])

    def time_s(self, t_c: ArrayLike, t_m: ArrayLike, rows: ArrayLike,
               config: Mapping[str, Any] | None = None, *, gather: ArrayLike = 0.0,
               dims: Sequence[ArrayLike] = ()) -> np.ndarray:
        """Predicted seconds per call for roofline terms t_c, t_m [s], GEMM rows and the bytes of
        one randomly gathered row (`Op.gather_bytes`; 0 = streaming access); a DIMS_COORDS curve
        also needs the operator's `dims` (`Op.dims`) and without them applies no residual."""
        base = self.base_time_s(t_c, t_m, rows, gather)
        if self.coords == DIMS_COORDS:
            if not dims or self.z.shape[1] != len(dims):
                return base
            return base * np.exp(self.residual(dim_features(dims), config))
        return base * np.exp(self.residual(features(t_c, t_m, rows, gather), config))

    def to_dict(self) -> dict[str, Any]:
        d = {"e_c": self.e_c, "e_m": self.e_m, "t0_s": self.t0_s, "r_half": self.r_half, "g_half": self.g_half,
             "h_decades": self.h,
             "n_train": self.n_train, "loo_log_err": self.loo_log_err, "z": np.round(self.z, 5).tolist(),
             "r": np.round(self.r, 5).tolist()}
        if self.cfg_keys:
            d.update(cfg_keys=list(self.cfg_keys), zc=np.round(self.zc, 6).tolist(), cfg_scale=self.cfg_scale)
        if len(self.w):
            d["w"] = np.round(self.w, 3).tolist()
        if self.coords != ROOFLINE_COORDS:
            d["coords"] = self.coords
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Curve:
        z = np.asarray(d.get("z", []), dtype=np.float64)
        z = z.reshape(len(z), -1) if z.size else np.zeros((0, N_FEATURES))  # 3 columns before the gather one
        keys = tuple(d.get("cfg_keys", ()))
        zc = np.asarray(d.get("zc", []), dtype=np.float64).reshape(-1, len(keys)) if keys else np.zeros((0, 0))
        return cls(float(d["e_c"]), float(d["e_m"]), float(d["t0_s"]), float(d.get("r_half", 0.0)),
                   float(d.get("h_decades", 0.0)), z, np.asarray(d.get("r", []), dtype=np.float64),
                   int(d.get("n_train", len(z))), float(d.get("loo_log_err", math.nan)), keys, zc,
                   float(d.get("cfg_scale", 0.0)), float(d.get("g_half", 0.0)),
                   str(d.get("coords", ROOFLINE_COORDS)), np.asarray(d.get("w", []), dtype=np.float64))


def _base(t_c: np.ndarray, t_m: np.ndarray, rows: np.ndarray, gather: np.ndarray, e_c: float, e_m: float,
          t0: float, r_half: float, g_half: float) -> np.ndarray:
    row_factor = 1.0 + r_half / np.maximum(rows, 1.0)  # rows = inf -> 1
    gather_factor = 1.0 + np.where(gather > 0, g_half / np.maximum(gather, 1e-9), 0.0)  # streaming -> 1
    return np.maximum(t_c * row_factor / e_c, t_m * gather_factor / e_m) + t0


def _unique_rows(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct rows in lexicographic order, index of each row of `a` among them): np.unique(axis=0,
    return_inverse=True) by a column lexsort, ~3x faster than its sort of packed rows."""
    if len(a) == 0:
        return a, np.zeros(0, dtype=np.intp)
    order = np.lexsort(a.T[::-1])
    s = a[order]
    new = np.empty(len(s), dtype=bool)
    new[0] = True
    new[1:] = np.any(s[1:] != s[:-1], axis=1)
    inv = np.empty(len(s), dtype=np.intp)
    inv[order] = np.cumsum(new) - 1
    return s[new], inv


def _kernel(a: np.ndarray, b: np.ndarray, h: float) -> np.ndarray:
    # |a - b|^2 expanded: no (n, m, dims) temporary for thousands of tuner rows
    d2 = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * a @ b.T
    return np.exp(-np.maximum(d2, 0.0) / (2 * h * h))


def fit_parametric(t_c: np.ndarray, t_m: np.ndarray, rows: np.ndarray,
                   t: np.ndarray) -> tuple[float, float, float, float]:
    """(e_c, e_m, t0, r_half) minimising a soft-L1 loss on log(pred / measured); a few starts, best
    kept. Streaming access; `fit_parametric_gather` also fits the per-row cost of gathers."""
    return fit_parametric_gather(t_c, t_m, rows, np.zeros_like(np.asarray(t, dtype=np.float64)), t)[:4]


def fit_parametric_gather(t_c: np.ndarray, t_m: np.ndarray, rows: np.ndarray, gather: np.ndarray,
                          t: np.ndarray) -> tuple[float, float, float, float, float]:
    """(e_c, e_m, t0, r_half, g_half) as `fit_parametric`; g_half is 0 unless some point gathers."""
    from scipy.optimize import least_squares

    log_t = np.log(t)
    lo = np.log([EFF_BOUNDS[0], EFF_BOUNDS[0], T0_BOUNDS_S[0], R_HALF_BOUNDS[0], G_HALF_BOUNDS[0]])
    hi = np.log([EFF_BOUNDS[1], EFF_BOUNDS[1], T0_BOUNDS_S[1], R_HALF_BOUNDS[1], G_HALF_BOUNDS[1]])
    has_rows = bool(np.any(np.isfinite(rows) & (t_c > 0)))
    has_gather = bool(np.any((gather > 0) & (t_m > 0)))
    n_par = 5 if has_gather else 4  # a streaming class does not carry the unused g_half into the solver
    lo, hi = lo[:n_par], hi[:n_par]

    def resid(x: np.ndarray) -> np.ndarray:
        e_c, e_m, t0, r_half, g_half = np.exp(np.append(x, 0.0) if n_par == 4 else x)
        fit = np.log(_base(t_c, t_m, rows, gather, e_c, e_m, t0, r_half if has_rows else 0.0,
                           g_half if has_gather else 0.0)) - log_t
        # A weak pull of both efficiencies toward 1: decides the one the data cannot (a class that is
        # memory-bound at every measured shape says nothing about e_c) and is negligible otherwise.
        return np.concatenate([fit, PRIOR_EFF * x[:2]])

    def start(q_c: float | None, q_m: float | None, t0_frac: float, r_half: float,
              g_half: float = 1e-3) -> np.ndarray:
        # q = None starts that efficiency at 1: max() hides the term that does not bind, so the
        # starts must include each term binding on its own
        e_c = np.quantile(t_c / t, q_c) if q_c is not None and np.any(t_c > 0) else 1.0
        e_m = np.quantile(t_m / t, q_m) if q_m is not None and np.any(t_m > 0) else 1.0
        x = np.log([max(e_c, 1e-3), max(e_m, 1e-3), max(t0_frac * t.min(), 2e-9), r_half, g_half])
        return np.clip(x[:n_par], lo + 1e-9, hi - 1e-9)

    best = None
    starts = [start(0.9, 0.9, 0.5, 1e-3), start(0.9, 0.9, 0.5, 16.0), start(0.5, 0.5, 0.1, 64.0),
              start(None, 0.5, 0.5, 16.0), start(0.5, None, 0.5, 16.0)]
    if has_gather:  # a per-row cost of about one cache line, and of a few
        starts += [start(None, 0.9, 0.5, 16.0, 64.0), start(None, 0.5, 0.1, 16.0, 256.0)]
    for x0 in starts:
        res = least_squares(resid, x0, bounds=(lo, hi), loss="soft_l1", f_scale=0.05,
                            x_scale=1.0, xtol=1e-8, ftol=1e-10, max_nfev=200)
        if best is None or res.cost < best.cost:
            best = res
    assert best is not None
    e_c, e_m, t0, r_half, g_half = np.exp(np.append(best.x, 0.0) if n_par == 4 else best.x)
    return (float(e_c), float(e_m), float(t0), float(r_half) if has_rows else 0.0,
            float(g_half) if has_gather else 0.0)


def fit_curve(t_c: ArrayLike, t_m: ArrayLike, rows: ArrayLike, t: ArrayLike,
              configs: Sequence[Mapping[str, Any]] | None = None, groups: Sequence[Any] | None = None, *,
              gather: ArrayLike | None = None, dims: np.ndarray | None = None) -> Curve:
    """Fit one curve to measured seconds `t` (1-D arrays of equal length, all t > 0).

    configs: one kernel config per point -> a config-aware curve; groups: the shape of each point,
    so the residual's bandwidth is chosen leaving a whole shape out (as the held-out split does);
    gather: bytes of one randomly gathered row per point (`Op.gather_bytes`; None or 0 = streaming);
    dims: (points, d) operator dimensions (`Op.dims`): the residual interpolates in them
    (DIMS_COORDS) instead of the roofline coordinates."""
    t_c, t_m, rows, t = (np.asarray(x, dtype=np.float64).ravel() for x in (t_c, t_m, rows, t))
    gather = np.zeros_like(t) if gather is None else np.broadcast_to(np.asarray(gather, dtype=np.float64), t.shape)
    if len(t) < MIN_POINTS:
        raise ValueError(f"a curve needs >= {MIN_POINTS} points, got {len(t)}")
    if not np.all(t > 0):
        raise ValueError("measured times must be > 0")
    e_c, e_m, t0, r_half, g_half = fit_parametric_gather(t_c, t_m, rows, gather, t)
    r = np.log(t) - np.log(_base(t_c, t_m, rows, gather, e_c, e_m, t0, r_half, g_half))
    z = features(t_c, t_m, rows, gather) if dims is None else dim_features(list(np.asarray(dims, dtype=np.float64).T))
    coords = ROOFLINE_COORDS if dims is None else DIMS_COORDS
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
        return Curve(e_c, e_m, t0, r_half, n_train=len(t), loo_log_err=err, g_half=g_half)
    return Curve(e_c, e_m, t0, r_half, h, z, r, len(t), err, keys, zc if keys else np.zeros((0, 0)), scale, g_half,
                 coords)


def curve_key(op_class: str, dtype: str | None = None, configs: bool = False) -> str:
    """'gemm', 'gemm|bf16' (the tuned kernel) or 'gemm|bf16|configs' (config-aware)."""
    return "|".join([op_class, *([dtype] if dtype else []), *([CONFIGS] if configs and dtype else [])])


def fit_curves(classes: Sequence[str], dtypes: Sequence[str], configs: Sequence[Mapping[str, Any]],
               units: Sequence[str], t_c: np.ndarray, t_m: np.ndarray, rows: np.ndarray,
               t: np.ndarray, gather: np.ndarray | None = None, *, dims: Sequence[np.ndarray] | None = None,
               pooled: bool = True) -> dict[str, Curve]:
    """Curves per class and per (class, dtype) with >= MIN_POINTS points. Where rows carry kernel
    configs, those curves describe the tuned kernel (per shape, the fastest config measured) and a
    config-aware curve 'class|dtype|configs' is fitted on every row; `units` names each row's shape;
    `gather`: bytes per randomly gathered row of each point (None = all streaming);
    `dims`: each point's operator dimensions (`Op.dims`) -> curves interpolating in them, with the
    residual width chosen leaving a whole unit out; pooled=False: no class-wide curve (per dtype only)."""
    gather = np.zeros(len(t)) if gather is None else np.asarray(gather, dtype=np.float64)
    groups: dict[str, list[int]] = {}
    for i, (c, d) in enumerate(zip(classes, dtypes)):
        if pooled:
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
                                                    [units[i] for i in idx], gather=gather[sel])
            idx = sorted(fastest.values())
        if len(idx) >= MIN_POINTS:
            sel = np.asarray(idx)
            if dims is not None:
                out[key] = fit_curve(t_c[sel], t_m[sel], rows[sel], t[sel], groups=[units[i] for i in idx],
                                     gather=gather[sel], dims=np.stack([dims[i] for i in idx]))
            else:
                out[key] = fit_curve(t_c[sel], t_m[sel], rows[sel], t[sel], gather=gather[sel])
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
    # no pooled curve stored: the widest measured format's (bf16 before fp8 ...)
    for d in ("fp32", "bf16", "fp8", "int8", "fp4"):
        if (key := curve_key(op_class, d)) in curves:
            return key, curves[key]
    return None
