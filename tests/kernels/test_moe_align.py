"""moe_align_block_size: exact outputs and invariants, on fixed and hypothesis-drawn topk_ids."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.moe import moe_align_block_size


def align_oracle(topk_ids: list[list[int]], block: int, experts: int):
    """Plain-Python construction of the documented contract."""
    flat = [e for row in topk_ids for e in row]
    numel = len(flat)
    sorted_ids, block_experts = [], []
    for e in range(experts):
        pairs = [i for i, v in enumerate(flat) if v == e]
        if not pairs:
            continue
        padded = -(-len(pairs) // block) * block
        sorted_ids += pairs + [numel] * (padded - len(pairs))
        block_experts += [e] * (padded // block)
    post = len(sorted_ids)
    max_padded = numel + experts * (block - 1)
    max_blocks = -(-max_padded // block)
    return (sorted_ids + [numel] * (max_padded - post), block_experts + [-1] * (max_blocks - len(block_experts)),
            post)


def check_invariants(topk_ids: torch.Tensor, block: int, experts: int) -> None:
    sorted_ids, expert_ids, post = moe_align_block_size(topk_ids, block, experts)
    flat = topk_ids.reshape(-1).tolist()
    numel = len(flat)
    assert sorted_ids.dtype == expert_ids.dtype == post.dtype == torch.int32
    assert sorted_ids.shape == (numel + experts * (block - 1),)
    assert expert_ids.shape == (-(-sorted_ids.numel() // block),)
    assert post.shape == (1,)
    n_post = int(post.item())
    counts = [flat.count(e) for e in range(experts)]
    assert n_post == sum(-(-c // block) * block for c in counts)
    assert n_post % block == 0

    used = sorted_ids[:n_post].tolist()
    real = [i for i in used if i != numel]
    assert sorted(real) == list(range(numel)), "every (token, k) pair exactly once"
    assert all(i == numel for i in sorted_ids[n_post:].tolist()), "tail is sentinel only"
    assert all(e == -1 for e in expert_ids[n_post // block :].tolist()), "unused blocks are -1"

    block_experts = expert_ids[: n_post // block].tolist()
    assert block_experts == sorted(block_experts), "experts ascending"
    for b, e in enumerate(block_experts):
        members = [i for i in used[b * block : (b + 1) * block] if i != numel]
        assert members, "no all-padding block inside the used range"
        assert all(flat[i] == e for i in members), "a block holds one expert only"
    for e in range(experts):
        assert block_experts.count(e) == -(-counts[e] // block), f"expert {e}: blocks"


def test_vllm_docstring_example():
    topk_ids = torch.tensor([[2, 3, 4], [1, 2, 4], [1, 3, 4], [1, 2, 3]])
    sorted_ids, expert_ids, post = moe_align_block_size(topk_ids, 4, 5)
    assert sorted_ids[:16].tolist() == [3, 6, 9, 12, 0, 4, 10, 12, 1, 7, 11, 12, 2, 5, 8, 12]
    assert post.tolist() == [16]
    assert expert_ids[:4].tolist() == [1, 2, 3, 4]
    assert sorted_ids.numel() == 12 + 5 * 3 and (sorted_ids[16:] == 12).all()
    assert (expert_ids[4:] == -1).all()


def test_zero_token_expert_gets_no_block():
    topk_ids = torch.tensor([[0, 2], [2, 0], [0, 2]])  # experts 1 and 3 unused
    sorted_ids, expert_ids, post = moe_align_block_size(topk_ids, 2, 4)
    assert post.item() == 8
    assert expert_ids[:4].tolist() == [0, 0, 2, 2]
    assert sorted_ids[:8].tolist() == [0, 3, 4, 6, 1, 2, 5, 6]


def test_block_size_one_has_no_padding():
    topk_ids = torch.tensor([[3, 1], [1, 0]])
    sorted_ids, expert_ids, post = moe_align_block_size(topk_ids, 1, 4)
    assert post.item() == 4 and sorted_ids.tolist() == [3, 1, 2, 0]
    assert expert_ids.tolist() == [0, 1, 1, 3]


@st.composite
def routing(draw):
    experts = draw(st.integers(1, 24))
    top_k = draw(st.integers(1, min(experts, 4)))
    m = draw(st.integers(1, 40))
    ids = draw(st.lists(st.lists(st.integers(0, experts - 1), min_size=top_k, max_size=top_k),
                        min_size=m, max_size=m))
    block = draw(st.sampled_from([1, 2, 3, 4, 16, 64]))
    return ids, block, experts


@settings(max_examples=120, deadline=None)
@given(routing())
def test_align_matches_oracle_and_invariants(case):
    ids, block, experts = case
    topk_ids = torch.tensor(ids, dtype=torch.int32)
    sorted_ids, expert_ids, post = moe_align_block_size(topk_ids, block, experts)
    expect_sorted, expect_experts, expect_post = align_oracle(ids, block, experts)
    assert post.item() == expect_post
    assert sorted_ids.tolist() == expect_sorted
    assert expert_ids.tolist() == expect_experts
    check_invariants(topk_ids, block, experts)


def test_int64_ids_accepted_and_outputs_are_int32():
    topk_ids = torch.tensor([[1], [0], [1]], dtype=torch.int64)
    sorted_ids, expert_ids, post = moe_align_block_size(topk_ids, 2, 2)
    assert sorted_ids[:4].tolist() == [1, 3, 0, 2] and expert_ids[:2].tolist() == [0, 1]
    assert sorted_ids.dtype == torch.int32 and post.item() == 4
