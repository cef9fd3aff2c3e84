"""A map-style ``torch.utils.data.Dataset`` over a patch sampler, for DataLoader workers.

Item ``i`` is a deterministic function of (seed, epoch, i): its random crop, flip/rotation
and noise come from ``numpy.random.default_rng([seed, epoch, i])``. So a batch is the same
whatever ``num_workers`` is and whichever worker draws it — no ``worker_init_fn`` is needed,
and shuffling is left to the DataLoader's own (seeded) sampler::

    ds = PatchDataset(prepared.sampler, patch_size=128, seed=0)
    loader = DataLoader(ds, batch_size=12, shuffle=True, num_workers=8, drop_last=True,
                        generator=torch.Generator().manual_seed(0))
    for epoch in range(epochs):
        ds.set_epoch(epoch)        # before iterating; workers copy the dataset each epoch
        for degraded, clean in loader:   # uint8 B×P×P×3 tensors → harness.train.to_tensor
            ...

With ``persistent_workers=True`` workers keep the epoch they started with; leave it off (the
default) or recreate the loader per epoch. With ``MixtureSampler`` an epoch is the paper's
repeated list (``len(sampler)``); other samplers (the mini one) need ``length``.
"""
from __future__ import annotations

import numpy as np
import torch


class PatchDataset(torch.utils.data.Dataset):
    def __init__(self, sampler, patch_size: int, seed: int = 0, length: int | None = None):
        self.sampler = sampler
        self.patch_size = int(patch_size)
        self.seed = int(seed)
        self.epoch = 0
        if length is None:
            try:
                length = len(sampler)
            except TypeError:
                raise ValueError("this sampler has no epoch length; pass length=") from None
        self.length = int(length)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        patch_at = getattr(self.sampler, "patch_at", None)
        if patch_at is not None:
            return patch_at(int(index), rng, self.patch_size)
        degraded, clean = self.sampler.sample(rng, 1, self.patch_size)
        return degraded[0], clean[0]
