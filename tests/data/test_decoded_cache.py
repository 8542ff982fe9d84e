"""The decoded cache: one mapped uint8 file per source, written in parallel, resumable, never read half-written."""

import re
from pathlib import Path

import pytest
import torch
from image_folders import add_bad_files, write_folder, write_save_to_disk

from vae_hub.data import cache as cache_module
from vae_hub.data import parallel_decode, sources
from vae_hub.data.image_folder import decode
from vae_hub.data.sources import load_splits
from vae_hub.data.spec import DataSpec


def spec_for(root: Path, cache: Path, **settings) -> DataSpec:
    return DataSpec(dataset=str(root), cache_dir=str(cache), **settings)


def decoded_folders(cache: Path) -> list[Path]:
    return sorted(p for p in (cache / "decoded").iterdir() if p.is_dir())


def all_images(splits) -> torch.Tensor:
    return torch.cat([splits.train.images, splits.test.images])


def rss_anon_kb() -> int:
    return int(re.search(r"RssAnon:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def test_the_cache_is_one_file_holding_each_picture_as_decoding_it_alone_gives(tmp_path):
    root = write_folder(tmp_path / "shapes", per_class=7)
    splits = load_splits(spec_for(root, tmp_path / "cache"), progress=False)
    (folder,) = decoded_folders(tmp_path / "cache")
    assert sorted(p.name for p in folder.iterdir()) == ["images.u8", "labels.safetensors", "meta.json"]
    assert (folder / "images.u8").stat().st_size == 14 * 3 * 28 * 28
    files = sorted(root.rglob("*.png"))
    expected = {f.name: torch.from_numpy(decode(f, 3, 28).copy()) for f in files}
    got = all_images(splits)
    assert len(splits.train) + len(splits.test) == 14 and len(splits.test) == 1  # round(10% of 14)
    for image in got:  # every decoded row is one of the pictures, and each picture is there once
        matches = [name for name, e in expected.items() if torch.equal(image, e)]
        assert len(matches) == 1
        expected.pop(matches[0])
    assert not expected


def test_an_interrupted_decoding_is_never_read_and_continues_where_it_stopped(tmp_path, monkeypatch, capsys):
    root = write_folder(tmp_path / "shapes", per_class=12)
    add_bad_files(root, "square")
    monkeypatch.setattr(parallel_decode, "CHUNK", 4)
    decoded_chunks = []
    real = sources.decode_chunk

    def killed_after_two(task):
        if len(decoded_chunks) == 2:
            raise KeyboardInterrupt  # as a kill between two chunks
        decoded_chunks.append(task.first_row)
        return real(task)

    monkeypatch.setattr(sources, "decode_chunk", killed_after_two)
    spec = spec_for(root, tmp_path / "cache")
    with pytest.raises(KeyboardInterrupt):
        load_splits(spec, progress=False)
    (partial,) = (tmp_path / "cache" / "decoded").glob("*.partial")
    assert decoded_folders(tmp_path / "cache") == [partial]  # no complete cache to be read by mistake

    decoded_chunks.clear()
    monkeypatch.setattr(sources, "decode_chunk", lambda task: decoded_chunks.append(task.first_row) or real(task))
    capsys.readouterr()
    resumed = load_splits(spec, progress=False)
    assert "continuing the interrupted decoding" in capsys.readouterr().out
    assert decoded_chunks == [8, 12, 16, 20, 22]  # the two chunks written before the kill are not decoded again
    assert not partial.exists()

    fresh = load_splits(spec_for(root, tmp_path / "fresh"), progress=False)
    assert torch.equal(all_images(resumed), all_images(fresh))
    assert torch.equal(resumed.train.labels, fresh.train.labels) and resumed.split_note == fresh.split_note
    assert "broken.png" in resumed.skipped and resumed.skipped == fresh.skipped


def test_a_half_written_cache_is_refused_and_the_decoding_starts_again_when_its_plan_is_damaged(tmp_path, monkeypatch):
    root = write_folder(tmp_path / "shapes", per_class=6)
    monkeypatch.setattr(parallel_decode, "CHUNK", 4)
    monkeypatch.setattr(sources, "decode_chunk", lambda task: (_ for _ in ()).throw(KeyboardInterrupt))
    spec = spec_for(root, tmp_path / "cache")
    with pytest.raises(KeyboardInterrupt):
        load_splits(spec, progress=False)
    (partial,) = (tmp_path / "cache" / "decoded").glob("*.partial")
    (partial / "plan.json").write_text("{not json")
    monkeypatch.undo()
    splits = load_splits(spec, progress=False)
    assert len(splits.train) + len(splits.test) == 12 and not partial.exists()


def test_a_damaged_cache_is_decoded_again_with_a_warning(tmp_path, capsys):
    root = write_folder(tmp_path / "shapes", per_class=5)
    spec = spec_for(root, tmp_path / "cache")
    first = all_images(load_splits(spec, progress=False)).clone()
    (folder,) = decoded_folders(tmp_path / "cache")
    with open(folder / "images.u8", "r+b") as f:
        f.truncate(100)
    capsys.readouterr()
    again = load_splits(spec, progress=False)
    out = capsys.readouterr().out
    assert "images.u8 has 100 bytes, expected 23520" in out and "decoding again" in out
    assert torch.equal(all_images(again), first)


def test_decoding_in_two_worker_processes_gives_the_same_rows_and_skips(tmp_path, monkeypatch):
    root = write_folder(tmp_path / "shapes", per_class=20, sizes=((28, 28), (40, 30)))
    add_bad_files(root, "circle")
    monkeypatch.setattr(parallel_decode, "CHUNK", 8)
    monkeypatch.setattr(parallel_decode, "IN_PROCESS_BELOW", 0)
    pools = []
    real_context = parallel_decode.multiprocessing.get_context
    monkeypatch.setattr(parallel_decode.multiprocessing, "get_context", lambda m: pools.append(m) or real_context(m))
    parallel = load_splits(spec_for(root, tmp_path / "a", image_size=24, decode_workers=2), progress=False)
    assert pools == ["fork", "fork"]  # the headers, then the pictures, in worker processes
    monkeypatch.setattr(parallel_decode, "IN_PROCESS_BELOW", 10**9)
    alone = load_splits(spec_for(root, tmp_path / "b", image_size=24, decode_workers=1), progress=False)
    assert len(parallel.train) + len(parallel.test) == 40
    assert torch.equal(all_images(parallel), all_images(alone))
    assert torch.equal(parallel.train.labels, alone.train.labels)
    assert parallel.skipped == alone.skipped and "broken.png" in parallel.skipped and "notes.txt" in parallel.skipped


def test_a_dataset_with_a_test_split_is_decoded_in_chunks_into_one_file(tmp_path, monkeypatch):
    pytest.importorskip("datasets")
    path = write_save_to_disk(tmp_path / "ds", n_train=13, n_test=5)
    monkeypatch.setattr(parallel_decode, "CHUNK", 4)
    splits = load_splits(spec_for(path, tmp_path / "cache"), progress=False)
    assert (len(splits.train), len(splits.test)) == (13, 5)
    assert splits.train.labels.tolist() == [i % 2 for i in range(13)]
    assert splits.class_names == ["circle", "square"] and "'test' split (5 images)" in splits.split_note


def test_reading_the_mapped_images_adds_almost_nothing_to_private_memory(tmp_path):
    root = write_folder(tmp_path / "shapes", per_class=300, sizes=((128, 128),))  # 600 x 3x128x128: 28 MB decoded
    spec = spec_for(root, tmp_path / "cache")
    load_splits(spec, progress=False)
    splits = load_splits(spec, progress=False)  # from the cache
    batches = splits.train.images.split(50)
    int(batches[0].max())  # torch's first reduction sets up its threads' memory: not the images'
    before = rss_anon_kb()
    brightest = max(int(x.max()) for x in batches[1:])  # touches every other page (max needs no wider copy)
    grown_kb = rss_anon_kb() - before
    assert brightest > 0
    assert grown_kb < 0.25 * splits.train.images.nbytes / 1024, grown_kb  # a copy would be all 25 MB of them


def test_two_runs_on_the_same_data_share_the_cache_file(tmp_path):
    root = write_folder(tmp_path / "shapes", per_class=5)
    spec = spec_for(root, tmp_path / "cache")
    a, b = load_splits(spec, progress=False), load_splits(spec, progress=False)
    assert torch.equal(all_images(a), all_images(b))
    assert len(decoded_folders(tmp_path / "cache")) == 1


def test_a_full_disk_is_found_before_any_picture_is_decoded(tmp_path, monkeypatch):
    root = write_folder(tmp_path / "shapes", per_class=5)
    monkeypatch.setattr(cache_module, "disk_free", lambda folder: 10 * 2**20)
    monkeypatch.setattr(sources, "decode_chunk", lambda task: pytest.fail("decoded despite the full disk"))
    with pytest.raises(Exception, match=r"needs 23\.0 KB on disk .* which has 10\.0 MB free"):
        load_splits(spec_for(root, tmp_path / "cache"), progress=False)
    assert not list((tmp_path / "cache" / "decoded").glob("*.partial"))
