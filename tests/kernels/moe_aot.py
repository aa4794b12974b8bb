"""Ahead-of-time compile of the MoE GEMM kernel for GPU targets; needs no GPU (ptxas ships with triton).

Run in its own process with TRITON_INTERPRET=0 (a process that already imported triton in
interpreter mode cannot also compile): ``python tests/kernels/moe_aot.py '<json list of cases>'``,
each case {"arch", "dtype", "fuse", "per_channel", "config"[, "block"]} ("block": block-wise fp8
with 128 x 128 scale blocks); prints a JSON list of
{"shared_bytes", "cubin", "pipelined"} or {"error"}. Arguments are specialised as a JIT launch
specialises them (unit strides constant, 16-divisible ints and pointers marked).
"""

from __future__ import annotations

import json
import sys

PTR = {"bfloat16": "*bf16", "float16": "*fp16", "float32": "*fp32", "float8_e4m3fn": "*fp8e4nv"}
DIVISIBLE_INTS = ("N", "K", "stride_am", "stride_be", "stride_bn", "stride_cm")


def compile_case(arch: int, dtype: str, fuse: bool, per_channel: bool, config: dict, block: bool = False) -> dict:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from kernels.moe.triton_impl import _moe_gemm_kernel as kernel

    use_fp8 = dtype == "float8_e4m3fn"
    consts = dict(A_ROW_DIV=2 if fuse else 1, FUSE_SILU_MUL=fuse, MUL_ROUTED_WEIGHT=not fuse, USE_FP8=use_fp8,
                  PER_CHANNEL=per_channel, UPCAST_TO_FP32=False, BLOCK_QUANT=block,
                  GROUP_N=128 if block else 1, GROUP_K=128 if block else 1,
                  DOT_PRECISION="ieee" if dtype == "float32" else "tf32",
                  stride_ak=1, stride_bk=1, stride_cn=1, stride_bsn=1,
                  **{k: config[k] for k in ("BLOCK_SIZE_M", "BLOCK_SIZE_N", "BLOCK_SIZE_K", "GROUP_SIZE_M")})
    ptrs = {"a_ptr": PTR[dtype], "b_ptr": PTR[dtype], "c_ptr": "*bf16" if use_fp8 else PTR[dtype],
            "sorted_token_ids_ptr": "*i32", "expert_ids_ptr": "*i32", "num_tokens_post_padded_ptr": "*i32"}
    names = kernel.arg_names
    sig = {n: "constexpr" if n in consts else ptrs.get(n, "*fp32" if n.endswith("_ptr") else "i32") for n in names}
    divisible = [(i,) for i, n in enumerate(names)
                 if n not in consts and (n.endswith("_ptr") or n in DIVISIBLE_INTS)]
    src = ASTSource(fn=kernel, signature=sig, constexprs=consts,
                    attrs={d: [["tt.divisibility", 16]] for d in divisible})
    compiled = triton.compile(src, target=GPUTarget("cuda", arch, 32),
                              options={"num_warps": config["num_warps"], "num_stages": config["num_stages"]})
    ttgir = compiled.asm["ttgir"]
    return {"shared_bytes": compiled.metadata.shared, "cubin": len(compiled.asm.get("cubin", b"")) > 0,
            "pipelined": "async_copy_global_to_local" in ttgir or "async_tma" in ttgir}


def main(argv: list[str]) -> int:
    results = []
    for case in json.loads(argv[0]):
        try:
            results.append(compile_case(**case))
        except Exception as exc:  # report per case; the test shows the message
            results.append({"error": f"{type(exc).__name__}: {str(exc)[-2000:]}"})
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
