"""Helpers shared by the study runners: parameter access, chips in display order, colours,
figure styling, and the efficiency model a study's params ask for."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

from accelsim.errors import UserError
from accelsim.perf import Efficiency
from accelsim.spec import load_chip, load_model
from accelsim.spec.chip import Chip
from accelsim.spec.model import Model
from accelsim.validate import MAX_TOKENS

TEMPLATE = "plotly_white"
MAX_PARAM = 1e15  # a study number (W, tokens/s, seconds ...) beyond this is a typo: NaN/inf fail too
# MTIA generations in blues/greens (old to new), reference GPUs in warm colours, TPUs in purple.
_FAMILY_COLOURS = {
    "mtia": ("#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b"),
    "gpu": ("#fdae6b", "#f16913", "#d94801", "#a63603", "#7f2704"),
    "tpu": ("#bcbddc", "#807dba", "#54278f"),
}
BOUND_COLOURS = {"compute": "#d62728", "memory": "#1f77b4", "communication": "#2ca02c", "overhead": "#7f7f7f"}


class Params:
    """Typed access to a runner's params dict; errors name the study parameter."""

    def __init__(self, params: Mapping[str, Any], study: str) -> None:
        self.p, self.study = dict(params), study

    def _get(self, key: str, default: Any) -> Any:
        if key not in self.p:
            if default is ...:
                raise UserError(f"study {self.study}: parameter '{key}' is missing")
            return default
        return self.p[key]

    def num(self, key: str, default: Any = ..., lo: float = 0.0, hi: float = MAX_PARAM) -> float:
        v = self._get(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
            raise UserError(f"study {self.study}: parameter '{key}' must be a number from {lo:g} to {hi:g}, "
                            f"got {str(v)[:40]}")
        return float(v)

    def opt_num(self, key: str) -> float | None:
        v = self.p.get(key)
        return None if v is None or v == 0 else self.num(key)

    def int(self, key: str, default: Any = ..., lo: int = 1, hi: int = MAX_TOKENS) -> int:
        v = self._get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise UserError(f"study {self.study}: parameter '{key}' must be a whole number from {lo} to {hi:,}, "
                            f"got {str(v)[:40]}")
        return v

    def str(self, key: str, default: Any = ...) -> str:
        v = self._get(key, default)
        if not isinstance(v, str):
            raise UserError(f"study {self.study}: parameter '{key}' must be a string, got {v!r}")
        return v

    def choice(self, key: str, choices: Sequence[builtins.str], default: Any = ...) -> builtins.str:
        """A string parameter that must name one of `choices` (e.g. the baseline among the study's chips)."""
        v = self.str(key, default)
        if v not in choices:
            raise UserError(f"study {self.study}: parameter '{key}' = '{v}' is not one of {', '.join(choices)}")
        return v

    def opt_str(self, key: str) -> str | None:
        return self.str(key) if self.p.get(key) else None

    def list(self, key: str, default: Any = ..., kind: type = builtins.str) -> list[Any]:
        v = self._get(key, default)
        def good(x: Any) -> bool:
            if kind is float:
                return isinstance(x, int | float) and not isinstance(x, bool)
            return isinstance(x, kind)

        ok = isinstance(v, list) and bool(v) and all(good(x) for x in v)
        if not ok:
            raise UserError(f"study {self.study}: parameter '{key}' must be a non-empty list of "
                            f"{'numbers' if kind is float else 'strings'}, got {v!r}")
        return [float(x) for x in v] if kind is float else list(v)

    def chips(self, key: str = "chips") -> list[Chip]:
        return sort_chips([load_chip(n) for n in self.list(key)])

    def models(self, key: str = "models") -> list[Model]:
        return [load_model(n) for n in self.list(key)]

    def efficiency(self) -> Efficiency:
        from accelsim.efficiency import DEFAULT_FIDELITY, efficiency_from_args

        cal = self.p.get("calibration") or None
        return efficiency_from_args(self.str("fidelity", DEFAULT_FIDELITY), self.p.get("stack") or None, cal)


def sort_chips(chips: Sequence[Chip]) -> list[Chip]:
    """Families grouped (MTIA first), each by availability year: the order every plot uses."""
    order = {"mtia": 0, "gpu": 1, "tpu": 2}
    return sorted(chips, key=lambda c: (order.get(c.family, 9), c.availability_year, c.tdp_w))


def colours(chips: Sequence[Chip]) -> dict[str, str]:
    """A stable colour per chip name: darker for newer generations within a family."""
    out: dict[str, str] = {}
    for fam, palette in _FAMILY_COLOURS.items():
        members = [c for c in sort_chips(chips) if c.family == fam]
        for i, c in enumerate(members):
            j = i if len(members) <= 1 else round(i * (len(palette) - 1) / (len(members) - 1))
            out[c.name] = palette[min(j, len(palette) - 1)]
    return out


def label(chip: Chip) -> str:
    base = chip.display_name.replace("NVIDIA ", "").replace("Meta ", "").replace("Google ", "").replace("AMD ", "")
    if chip.what_if:
        base += " (" + ", ".join(f"{k} x{v:g}" for k, v in sorted(chip.what_if.items())) + ")"
    return base


def style(fig: Any, title: str, height: int = 460) -> Any:
    """The house look: white template, title top left, a horizontal legend under the title and
    above the subplot titles (hence the generous top margin)."""
    fig.update_layout(title={"text": title, "x": 0.01, "y": 0.98, "yanchor": "top"}, template=TEMPLATE,
                      height=height, margin={"l": 60, "r": 20, "t": 110, "b": 60},
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.09, "x": 0})
    return fig


def plural(n: int, noun: str) -> str:
    """'1 rack', '6,952 racks'."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def si(x: float, unit: str = "") -> str:
    """1.23e9 -> '1.23 G' + unit (for sentences in reports)."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= factor:
            return f"{x / factor:,.3g} {prefix}{unit}"
    return f"{x:,.3g} {unit}".rstrip()
