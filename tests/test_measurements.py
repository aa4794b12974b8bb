"""The measurement schema: rows, atomic write/read round trip, rejections, MoE shape keys."""

import pytest

from accelsim import measurements as M
from accelsim.errors import UserError


def _row(**kw):
    base = dict(op="gemm", name="matmul", dtype="fp32", shape={"m": 8, "n": 16, "k": 32}, flops=2 * 8 * 16 * 32,
                bytes=4 * (8 * 32 + 32 * 16 + 8 * 16), median_s=1e-5, p20_s=9e-6, p80_s=1.1e-5, reps=7)
    return M.row(**{**base, **M.provenance("test"), **kw})


def test_round_trip(tmp_path):
    path = tmp_path / "m.csv"
    assert M.write(path, [_row(), _row(config={"BLOCK_SIZE_M": 64})]) == 2
    rows = M.read(path)
    assert rows[0]["shape"] == {"m": 8, "n": 16, "k": 32} and rows[0]["reps"] == 7
    assert rows[1]["config"] == {"BLOCK_SIZE_M": 64} and rows[0]["config"] == {}
    assert rows[0]["git_commit"] and rows[0]["date_utc"].endswith("Z")


def test_unknown_field_rejected():
    with pytest.raises(ValueError, match="unknown measurement fields"):
        M.row(op="gemm", colour="red")


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace(",median_s,", ",median_x,"), "missing columns"),
    (lambda t: t.replace(",1e-05,", ",-1,"), "median_s must be > 0"),
    (lambda t: t.replace(",1e-05,", ",abc,"), "bad value"),
])
def test_bad_files_are_user_errors(tmp_path, edit, message):
    path = tmp_path / "m.csv"
    M.write(path, [_row()])
    path.write_text(edit(path.read_text()))
    with pytest.raises(UserError, match=message):
        M.read(path)


def test_missing_file():
    with pytest.raises(UserError, match="does not exist"):
        M.read("/nonexistent/m.csv")


def test_moe_shape_accepts_both_spellings():
    short = {"E": 8, "H": 4096, "I": 7168, "top_k": 2, "M": 16}
    long = {"experts": 8, "hidden": 4096, "inter": 7168, "top_k": 2, "m": 16}
    assert M.moe_shape(short) == M.moe_shape(long) == short
    assert M.moe_shape({"E": 8, "H": 4096, "top_k": 2, "M": 16}) is None  # intermediate missing
