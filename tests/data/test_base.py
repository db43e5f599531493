import pytest
import torch

from dalle.data.base import (
    BadFile,
    SkipReport,
    collate_image_text,
    iter_batches,
    iter_samples,
    make_loader,
)


def sample(value: float, caption: str) -> tuple[torch.Tensor, str]:
    return torch.full((3, 2, 2), value), caption


def test_skip_report_counts_and_summarises():
    report = SkipReport()
    assert report.count == 0 and report.summary() == "no files skipped"
    report.add(BadFile("a.png", "corrupt image"))
    assert (
        report.summary()
        == "skipped 1 unreadable file (1 corrupt image); first: a.png (corrupt image)"
    )
    report.extend([BadFile("b.png", "too many pixels"), BadFile("c.png", "corrupt image")])
    assert report.count == 3
    assert report.by_reason() == {"corrupt image": 2, "too many pixels": 1}
    assert report.summary() == (
        "skipped 3 unreadable files (2 corrupt image, 1 too many pixels); first: a.png (corrupt image)"
    )


def test_skip_report_keeps_only_a_few_examples():
    report = SkipReport(max_examples=2)
    report.extend(BadFile(f"{i}.png", "corrupt image") for i in range(5))
    assert report.count == 5
    assert [b.path for b in report.examples] == ["0.png", "1.png"]


def test_iter_samples_filters_bad_files_into_the_report():
    items = [sample(0.1, "a"), BadFile("x", "not an image"), sample(0.2, "b")]
    report = SkipReport()
    good = list(iter_samples(items, report))
    assert [c for _, c in good] == ["a", "b"]
    assert report.by_reason() == {"not an image": 1}


def test_collate_drops_bad_files_and_returns_them():
    bad = BadFile("x", "missing file")
    images, captions, bads = collate_image_text([sample(0.1, "a"), bad, sample(0.2, "b")])
    assert images.shape == (2, 3, 2, 2) and images.dtype == torch.float32
    assert images[1, 0, 0, 0].item() == pytest.approx(0.2)
    assert captions == ["a", "b"] and bads == [bad]
    images, captions, bads = collate_image_text([bad])
    assert images.shape == (0, 3, 0, 0) and captions == [] and bads == [bad]


class ListDataset(torch.utils.data.Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


def test_make_loader_batches_and_reports():
    items = [sample(i / 10, str(i)) for i in range(6)]
    items[3] = BadFile("3.png", "corrupt image")
    dataset = ListDataset(items)
    first = [c for _, c, _ in make_loader(dataset, 2, shuffle=True, seed=5)]
    again = [c for _, c, _ in make_loader(dataset, 2, shuffle=True, seed=5)]
    assert first == again
    assert sorted(sum(first, [])) == ["0", "1", "2", "4", "5"]
    report = SkipReport()
    batches = list(iter_batches(make_loader(dataset, 4), report))
    assert [caps for _, caps in batches] == [["0", "1", "2"], ["4", "5"]]
    assert report.count == 1
