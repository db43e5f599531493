import pytest
import torch

from dalle.data.base import BadFile, SkipReport, iter_batches, iter_samples, make_loader
from dalle.data.shards import WebDatasetShards, expand_shard_urls
from dalle.data.transforms import TransformConfig

CFG = TransformConfig(image_size=16)
SHARD_0_AND_2 = ["caption five", "caption four", "caption one", "caption zero"]


def read_all(ds) -> tuple[list[str], SkipReport]:
    report = SkipReport()
    captions = [caption for _, caption in iter_samples(ds, report)]
    return captions, report


def test_samples_and_bad_members(shard_dir, good_shard_captions):
    ds = WebDatasetShards(shard_dir, CFG)
    assert isinstance(ds, torch.utils.data.IterableDataset)
    items = list(ds)
    good = [item for item in items if not isinstance(item, BadFile)]
    for image, _ in good:
        assert image.shape == (3, 16, 16) and image.dtype == torch.float32
        assert 0.0 <= image.min().item() and image.max().item() <= 1.0
    assert sorted(caption for _, caption in good) == good_shard_captions
    bad = sorted((b.path.rsplit("/", 1)[-1], b.reason) for b in items if isinstance(b, BadFile))
    assert bad == [
        ("shard-000000.tar:bad", "not an image"),
        ("shard-000001.tar:notxt", "missing caption"),
        ("shard-000002.tar:onlytxt", "missing image"),
    ]


def test_two_dataloader_workers_yield_each_sample_once(shard_dir, good_shard_captions):
    loader = make_loader(WebDatasetShards(shard_dir, CFG), batch_size=2, num_workers=2)
    report = SkipReport()
    captions = [c for _, batch in iter_batches(loader, report) for c in batch]
    assert sorted(captions) == good_shard_captions
    assert report.count == 3


def test_env_rank_and_world_size_partition_the_shards(shard_dir, good_shard_captions, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    per_rank = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        per_rank.append(sorted(read_all(WebDatasetShards(shard_dir, CFG))[0]))
    assert per_rank[0] == SHARD_0_AND_2
    assert per_rank[1] == ["caption three", "caption two"]
    assert sorted(per_rank[0] + per_rank[1]) == good_shard_captions


def test_a_training_run_reads_every_shard_in_every_process(shard_dir, good_shard_captions,
                                                           monkeypatch):  # fmt: skip
    from dalle.cli.train_args import open_training_data
    from dalle.training.loop import RunConfig

    # the training loop gives each process its slice of one global batch, so every process must
    # read the same stream: a split by process would throw away all but 1/N of what each reads
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    dataset = open_training_data(RunConfig(data=str(shard_dir)), 16)
    assert sorted(read_all(dataset)[0]) == good_shard_captions


def test_explicit_rank_and_world_size(shard_dir, monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    captions, _ = read_all(WebDatasetShards(shard_dir, CFG, rank=0, world_size=2))
    assert sorted(captions) == SHARD_0_AND_2
    with pytest.raises(ValueError, match="rank"):
        WebDatasetShards(shard_dir, CFG, rank=2, world_size=2)


def test_augmentation_does_not_depend_on_the_split(shard_dir):
    cfg = TransformConfig(image_size=16, crop="random", noise_std=0.1)
    whole = {c: image for image, c in read_samples(WebDatasetShards(shard_dir, cfg, seed=1))}
    part = {
        c: image
        for image, c in read_samples(WebDatasetShards(shard_dir, cfg, seed=1, rank=1, world_size=2))
    }
    assert part and all(torch.equal(image, whole[c]) for c, image in part.items())
    other = {c: image for image, c in read_samples(WebDatasetShards(shard_dir, cfg, seed=2))}
    assert not torch.equal(other["caption two"], whole["caption two"])


def read_samples(ds):
    return list(iter_samples(ds, SkipReport()))


def test_shuffle_buffer_is_seeded(shard_dir, good_shard_captions):
    def order(seed: int, epoch: int) -> list[str]:
        ds = WebDatasetShards(shard_dir, CFG, seed=seed, shuffle_buffer=4)
        ds.set_epoch(epoch)
        return read_all(ds)[0]

    first = order(0, 0)
    assert sorted(first) == good_shard_captions
    assert order(0, 0) == first
    assert any(order(0, epoch) != first for epoch in (1, 2, 3))


def test_unreadable_shard_is_a_bad_file(shard_dir, good_shard_captions):
    (shard_dir / "shard-000003.tar").write_bytes(b"\x00garbage" * 100)
    captions, report = read_all(WebDatasetShards(shard_dir, CFG))
    assert sorted(captions) == good_shard_captions
    assert report.by_reason()["unreadable shard"] == 1
    unreadable = [b for b in report.examples if b.reason == "unreadable shard"]
    assert unreadable[0].path.endswith("shard-000003.tar")
    assert "caption zero" in WebDatasetShards(shard_dir, CFG).captions()


def test_captions_read_only_the_text_members(shard_dir):
    assert sorted(WebDatasetShards(shard_dir, CFG).captions()) == sorted(
        ["caption zero", "caption one", "bad one", "caption two", "caption three"]
        + ["caption four", "caption five", "lonely"]
    )


def test_url_forms(shard_dir):
    listed = sorted(str(p) for p in shard_dir.glob("*.tar"))
    assert expand_shard_urls(shard_dir) == listed
    assert expand_shard_urls(f"{shard_dir}/shard-{{000000..000002}}.tar") == listed
    assert expand_shard_urls(listed[:2]) == listed[:2]
    assert expand_shard_urls(listed[0]) == listed[:1]
    with pytest.raises(
        FileNotFoundError, match="7 of 10 shards not found, first: .*shard-000003.tar"
    ):
        expand_shard_urls(f"{shard_dir}/shard-{{000000..000009}}.tar")
    with pytest.raises(FileNotFoundError, match=r"no \*\.tar shards in folder"):
        expand_shard_urls(shard_dir.parent)


def test_a_shard_cut_at_a_member_boundary_is_reported(shard_dir, good_shard_captions):
    import tarfile

    path = shard_dir / "shard-000000.tar"
    with tarfile.open(path) as tar:
        members = tar.getmembers()
    cut = members[2].offset  # after the first sample's two members: a tar reader sees an end
    path.write_bytes(path.read_bytes()[:cut])
    captions, report = read_all(WebDatasetShards(shard_dir, CFG))
    assert len(captions) < len(good_shard_captions)  # samples after the cut are gone...
    assert report.by_reason()["truncated shard"] == 1  # ...and the report says where
    assert [b.path for b in report.examples if b.reason == "truncated shard"] == [str(path)]
