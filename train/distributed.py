"""Many devices: one process per device under torchrun, FSDP2 sharding, each step split across ranks.

    torchrun --nproc-per-node 8 -m offcurate train -i data/voted -o runs/r1 --model Qwen/Qwen2.5-7B-Instruct
    python -m pytest tests/test_train_distributed.py          # 2 CPU ranks (gloo) against 1 process

Started by torchrun (``WORLD_SIZE`` > 1), every rank builds the same step (the step stream is a pure
function of the data and the seed, so no data is sent), packs it exactly as one process would, and runs
its share of the micro-batches: they are dealt out largest first to the rank with the fewest tokens so far,
at most ceil(n / world) each, and a rank with fewer runs zero-weight padding rows so that every rank runs
the same number of forward/backward passes (FSDP's collectives pair up). Token weights stay 1/(Q·G·|o|)
of the whole step and FSDP's gradient reduction sums instead of averaging, so the summed gradient is the
one-process gradient. Sums of the statistics are all-reduced; padding rows count in none.

With ``--sp-size K`` the micro-batches are dealt to world/K groups of K consecutive ranks instead, and
every rank of a group runs its slice of each of the group's micro-batches (``ulysses``).

Without torchrun (or with one rank) nothing here changes the one-process run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TypeVar

import torch
import torch.distributed as dist

from ..curate.io.errors import OffcurateError, ReportedElsewhere
from . import ulysses
from .model import PackedPolicy, Precision, resolve_device
from .packing import MicroBatch, Sample, build_micro_batch

T = TypeVar("T")
# a rank that waits longer than this in a collective raises instead of hanging (torchrun also stops the
# other ranks as soon as one exits with an error); long enough for rank 0 to write a 32B checkpoint
TIMEOUT = timedelta(minutes=30)


@dataclass(frozen=True)
class Ranks:
    """This process's place in the run: rank, world size, local rank (its device on the node), and its
    sequence-parallel group: ``sp`` consecutive ranks that share every micro-batch (``ulysses``)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    sp: int = 1
    sp_group: dist.ProcessGroup | None = field(default=None, compare=False, repr=False)

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes run files and draws the live view."""
        return self.rank == 0

    @property
    def sharded(self) -> bool:
        return self.world > 1

    @property
    def data_rank(self) -> int:
        """Which share of a step's micro-batches this rank runs (its sequence group's)."""
        return self.rank // self.sp

    @property
    def data_world(self) -> int:
        return self.world // self.sp


def start(device_name: str, sp: int = 1) -> tuple[Ranks, torch.device]:
    """Join the process group when torchrun started several ranks; the device of this process.

    Under torchrun ``--device auto``/``cuda`` means ``cuda:LOCAL_RANK`` (one process per GPU); an explicit
    ``cuda:K`` would put several ranks on one GPU and is refused. ``sp`` > 1 groups the ranks by ``sp``
    for sequence parallelism: the world size must be a multiple of it.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if sp > 1 and (world < sp or world % sp):
        raise OffcurateError(
            f"--sp-size {sp} splits each micro-batch over {sp} ranks: launch with torchrun and a "
            f"multiple of {sp} processes (got {world})"
        )
    if world <= 1:
        return Ranks(), resolve_device(device_name)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device_name not in ("auto", "cpu", "cuda"):
        raise OffcurateError(
            f"--device {device_name}: under torchrun each rank uses cuda:LOCAL_RANK "
            "(pass --device cuda or auto)"
        )
    use_cuda = device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available())
    if use_cuda:
        device = resolve_device(f"cuda:{local}")
        torch.cuda.set_device(device)
        dist.init_process_group("cpu:gloo,cuda:nccl", timeout=TIMEOUT, device_id=device)
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo", timeout=TIMEOUT)
    group = ulysses.sequence_groups(world, sp, device)
    return Ranks(dist.get_rank(), dist.get_world_size(), local, sp, group), device


def stop() -> None:
    """Leave the process group (always, also after an error: gloo may abort at interpreter exit otherwise)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ranks: Ranks) -> None:
    if ranks.sharded:
        dist.barrier()


def agree(ranks: Ranks, error: BaseException | None) -> None:
    """A barrier at which every rank says how its part went; when any failed, every rank raises.

    Without it a rank that failed alone (rank 0 finding the output taken, a full disk under one rank)
    left the others waiting in their next collective until the process group died, and each printed
    gloo's "Connection closed by peer" traceback over the one line that mattered. Here a known error
    (``OffcurateError``) is said by rank 0 alone, tagged "(rank R)" when rank R met it; a bug keeps its
    traceback, raised by the lowest rank that met one. Every other rank raises ``ReportedElsewhere`` and
    leaves without a word (cli.py). One process: ``error`` is raised as it is.
    """
    if not ranks.sharded:
        if error is not None:
            raise error
        return
    mine = None if error is None else (isinstance(error, OffcurateError), str(error))
    everyone: list[tuple[bool, str] | None] = [None] * ranks.world
    dist.all_gather_object(everyone, mine)
    failed = [(rank, said) for rank, said in enumerate(everyone) if said is not None]
    if not failed:
        return
    bugs = [rank for rank, (known, _) in failed if not known]
    speaker = bugs[0] if bugs else 0
    if ranks.rank != speaker:
        raise ReportedElsewhere(f"rank {failed[0][0]} failed: {failed[0][1][1]}")
    if error is not None:
        raise error
    rank, (_, message) = failed[0]
    raise OffcurateError(f"(rank {rank}) {message}")


def on_rank0(ranks: Ranks, work: Callable[[], T]) -> T | None:
    """``work()`` on rank 0 alone (writing run files, building tiny-random), then ``agree``: the other
    ranks wait for it and leave quietly if it failed. Returns its result on rank 0, None elsewhere."""
    result, error = None, None
    if ranks.main:
        try:
            result = work()
        except Exception as err:  # noqa: BLE001 - handed to agree, which raises it again
            error = err
    agree(ranks, error)
    return result


def all_sum(ranks: Ranks, *tensors: torch.Tensor) -> None:
    """Sum each tensor over the ranks, in place."""
    if ranks.sharded:
        for t in tensors:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The repeated blocks (``Qwen2DecoderLayer``, ``LlamaDecoderLayer``, ...): one FSDP unit each."""
    layers = [m for m in model.modules() if type(m).__name__.endswith("DecoderLayer")]
    if not layers:
        raise OffcurateError(f"{type(model).__name__}: no *DecoderLayer modules to shard")
    return layers


def shard(
    model: torch.nn.Module, precision: Precision, chunk: int, device: torch.device, sp_group=None
) -> PackedPolicy:
    """FSDP2 per decoder layer plus a ``PackedPolicy`` root over the rest (embedding, norm, head).

    bf16-mixed: bf16 parameters in compute, gradients reduced in fp32 (``MixedPrecisionPolicy``). Every FSDP
    unit sums gradients (divide factor 1): the token weights already hold the whole step's normalisation.
    """
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard

    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    if precision.name == "bf16-mixed":
        mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    else:
        mp = MixedPrecisionPolicy()
    for layer in decoder_layers(model):
        fully_shard(layer, mesh=mesh, mp_policy=mp)
    policy = fully_shard(PackedPolicy(model, precision, chunk, sp_group), mesh=mesh, mp_policy=mp)
    for module in policy.modules():
        if isinstance(module, FSDPModule):
            module.set_gradient_divide_factor(1.0)
            module.set_force_sum_reduction_for_comms(True)  # plain SUM: gloo has no PREMUL_SUM
    return policy


def shard_from_rank0(
    model: torch.nn.Module, precision: Precision, chunk: int, device: torch.device, sp_group=None
) -> PackedPolicy:
    """Shard a model that only rank 0 holds (read from disk); the others built it on the meta device.

    Rank 0 keeps its full state dict in host memory, every rank shards its (real or meta) model and
    allocates its shards on ``device``, then the weights are broadcast from rank 0 and each rank keeps
    its shard: one copy of the model on the node, never one per rank. Buffers that no state dict carries
    (rotary ``inv_freq``) are computed by rank 0's model and broadcast too.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    main = dist.get_rank() == 0
    full = {f"model.{k}": v for k, v in model.state_dict().items()} if main else {}
    persistent = {f"model.{k}" for k in model.state_dict()}
    extra = {f"model.{n}": b for n, b in model.named_buffers() if f"model.{n}" not in persistent}
    computed = {n: b.detach().clone() for n, b in extra.items()} if main else {}
    policy = shard(model, precision, chunk, device, sp_group)
    policy.to_empty(device=device)
    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)
    set_model_state_dict(policy, full, options=options)
    for name, buffer in policy.named_buffers():
        if name in extra:
            if main:
                buffer.copy_(computed[name])
            dist.broadcast(buffer, src=0)
    return policy


def assign(costs: list[int], world: int) -> list[list[int]]:
    """Indices per rank: largest cost first to the rank with the least so far, at most ceil(n/world) each.

    Deterministic (ties go to the lower index and the lower rank), so every rank computes the same split.
    """
    cap = -(-len(costs) // world)
    load, out = [0] * world, [[] for _ in range(world)]
    for i in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        r = min((r for r in range(world) if len(out[r]) < cap), key=lambda r: (load[r], r))
        out[r].append(i)
        load[r] += costs[i]
    return [sorted(o) for o in out]


def padding_batch(like: MicroBatch) -> MicroBatch:
    """A two-token row with weight 0: it runs the collectives of a micro-batch and changes nothing."""
    token = int(like.input_ids[0, 0])
    return replace(build_micro_batch([Sample([token, token], 1, 0.0, 0.0)]), seq_lengths=[], padding=True)


def my_share(batches: list[MicroBatch], ranks: Ranks) -> list[MicroBatch]:
    """This rank's micro-batches of a step, padded to the same count on every rank.

    The micro-batches are dealt to the sequence groups (one group per rank without ``--sp-size``); each
    rank of a group runs its slice of every micro-batch of the group's share.
    """
    if not ranks.sharded:
        return batches
    shares = assign([b.n_tokens for b in batches], ranks.data_world)
    mine = [batches[i] for i in shares[ranks.data_rank]]
    mine += [padding_batch(batches[0])] * (max(map(len, shares)) - len(mine))
    return [ulysses.slice_micro_batch(b, ranks.rank % ranks.sp, ranks.sp) for b in mine]
