from kdinspect.engine.sampling import EpochBatchSampler


def test_deterministic_per_epoch_and_skip() -> None:
    s = EpochBatchSampler(10, 3, seed=1)
    s.set_epoch(2)
    full = list(s)
    s.set_epoch(2, start_batch=2)
    assert list(s) == full[2:]
    s.set_epoch(3)
    assert list(s) != full
    assert len(s) == 4 and sum(len(b) for b in full) == 10


def test_shards_union_equals_single_process() -> None:
    single = EpochBatchSampler(12, 4, seed=5)
    r0 = EpochBatchSampler(12, 2, seed=5, rank=0, world_size=2)
    r1 = EpochBatchSampler(12, 2, seed=5, rank=1, world_size=2)
    for s in (single, r0, r1):
        s.set_epoch(1)
    for b, b0, b1 in zip(single, r0, r1):
        assert sorted(b) == sorted(b0 + b1)


def test_drop_last() -> None:
    s = EpochBatchSampler(10, 4, drop_last=True)
    assert len(s) == 2 and all(len(b) == 4 for b in s)
