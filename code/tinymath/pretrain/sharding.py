"""The device mesh and FSDP placement: each parameter (and its optimizer moments) is split over the `fsdp` axis along
its largest divisible dimension; the batch is split over data x fsdp.

The mesh is built with `Mesh(...)`, whose axes are Auto: `jax.make_mesh` defaults to Explicit axes, under which
ordinary ops on sharded arrays raise sharding type errors.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from tinymath.errors import UserError
from tinymath.pretrain.config import MeshConfig

BATCH_AXES = ("data", "fsdp")


def make_mesh(cfg: MeshConfig, devices: list[jax.Device] | None = None) -> Mesh:
    devices = list(jax.devices() if devices is None else devices)
    need = cfg.data * cfg.fsdp
    if len(devices) < need:
        raise UserError(f"mesh data={cfg.data} x fsdp={cfg.fsdp} needs {need} devices, this host has {len(devices)}")
    return Mesh(np.asarray(devices[:need]).reshape(cfg.data, cfg.fsdp), BATCH_AXES)


def param_spec(shape: tuple[int, ...], fsdp: int) -> P:
    """Shard the largest dimension divisible by the fsdp size; replicate what cannot be split evenly."""
    if fsdp > 1:
        for axis in sorted(range(len(shape)), key=lambda a: -shape[a]):
            if shape[axis] % fsdp == 0:
                return P(*[("fsdp" if a == axis else None) for a in range(len(shape))])
    return P()


def tree_shardings(tree, mesh: Mesh):
    """A NamedSharding per leaf of a tree of arrays (or shape structs), by `param_spec`."""
    fsdp = mesh.shape["fsdp"]
    return jax.tree.map(lambda x: NamedSharding(mesh, param_spec(tuple(x.shape), fsdp)), tree)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Rows over every device; the sequence axis whole."""
    return NamedSharding(mesh, P(BATCH_AXES))


def put_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Host rows of this process -> global arrays sharded over the mesh (one process: all rows)."""
    sharding = batch_sharding(mesh)
    return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}
