"""The on-disk caches are not trusted as they are (engine.cache): a converted OpenVINO network
whose weights were changed on disk is converted again rather than run, the cache folder is private
to the user, and a folder that belongs to someone else is not used even when what it holds carries
a seal that matches (anyone can compute one)."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import cache
from engine.checkpoints import build_untrained
from engine.inference import openvino_backend

needs_openvino = pytest.mark.skipif(
    not openvino_backend.available(), reason="openvino is not installed"
)
posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX owners and modes")


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SRSTUDIO_CACHE_DIR", str(tmp_path / "default-cache"))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _warnings(caplog) -> list[str]:
    """SR Studio's own warnings (a library's would not be the cache's doing)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("engine")
    ]


# ------------------------------------------------------------------------------ engine.cache


def _artefact(folder: Path) -> list[Path]:
    files = [folder / "net.xml", folder / "net.bin"]
    files[0].write_text("<net/>")
    files[1].write_bytes(bytes(range(256)))
    return files


@posix_only
def test_a_cache_folder_is_created_private_to_the_user(tmp_path):
    folder = cache.private_folder(tmp_path / "a" / "cache")
    assert folder == tmp_path / "a" / "cache"
    assert _mode(folder) == 0o700


@posix_only
def test_an_own_folder_that_others_could_write_is_made_private_and_emptied(tmp_path, caplog):
    folder = tmp_path / "cache"
    folder.mkdir()
    planted = _artefact(folder)
    cache.write_seal(planted, "source")
    folder.chmod(0o777)
    with caplog.at_level(logging.WARNING, logger="engine.cache"):
        assert cache.private_folder(folder) == folder
    assert _mode(folder) == 0o700
    assert list(folder.iterdir()) == []
    assert len(_warnings(caplog)) == 1


@posix_only
def test_a_folder_of_another_user_is_not_used(tmp_path, monkeypatch, caplog):
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    monkeypatch.setattr(cache, "_user_id", lambda: os.getuid() + 1)
    with caplog.at_level(logging.WARNING, logger="engine.cache"):
        assert cache.private_folder(folder) is None
    assert "another user" in caplog.text


def test_a_sealed_artefact_is_read_back_as_written(tmp_path):
    files = _artefact(tmp_path)
    cache.write_seal(files, "weights-1")
    assert cache.read_sealed(files, "weights-1", "test") == [p.read_bytes() for p in files]


DAMAGES = {
    "a byte changed": lambda files: files[1].write_bytes(bytes(range(1, 256)) + b"\0"),
    "no seal (an older cache)": lambda files: cache.seal_path(files).unlink(),
    "seal not JSON": lambda files: cache.seal_path(files).write_text("{"),
    "a file missing": lambda files: files[0].unlink(),
}


@pytest.mark.parametrize("case", sorted(DAMAGES))
def test_an_artefact_that_differs_from_its_seal_is_removed_with_one_line(tmp_path, caplog, case):
    files = _artefact(tmp_path)
    cache.write_seal(files, "weights-1")
    DAMAGES[case](files)
    with caplog.at_level(logging.WARNING, logger="engine.cache"):
        assert cache.read_sealed(files, "weights-1", "test") is None
    assert len(_warnings(caplog)) == 1 and "discarded" in caplog.text
    assert list(tmp_path.iterdir()) == []


def test_an_artefact_made_from_other_weights_is_not_used(tmp_path):
    files = _artefact(tmp_path)
    cache.write_seal(files, "weights-1")
    assert cache.read_sealed(files, "weights-2", "test") is None
    assert not any(p.exists() for p in files)


# ------------------------------------------------------------------------------ OpenVINO


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """A tiny network, an input, the PyTorch output and a cache folder holding its IR."""
    torch.manual_seed(0)
    desc = build_untrained("CRAN-tiny", 2)
    x = torch.rand(1, 3, 20, 24, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = desc.model(x)
    folder = tmp_path_factory.mktemp("golden") / "openvino"
    net = openvino_backend.OpenVinoNetwork(desc, cache=folder)
    torch.testing.assert_close(net(x), ref, atol=1e-4, rtol=0)
    return desc, x, ref, folder, net.ir_path(None)


def _copy_cache(converted, tmp_path: Path) -> tuple[Path, Path]:
    """The module's cache folder copied for one test: (folder, the IR's .xml)."""
    *_, folder, xml = converted
    mine = tmp_path / "openvino"
    shutil.copytree(folder, mine)
    return mine, mine / xml.name


def _scale_weights(xml: Path, factor: float) -> None:
    """Multiply every f32 constant of an IR's .bin by `factor`: the values stay finite, the
    file stays well formed, and the network computes something else."""
    data = bytearray(xml.with_suffix(".bin").read_bytes())
    for layer in ET.parse(xml).getroot().iter("layer"):
        spec = layer.find("data")
        if layer.get("type") != "Const" or spec is None or spec.get("element_type") != "f32":
            continue
        start, size = int(spec.get("offset")), int(spec.get("size"))
        values = np.frombuffer(bytes(data[start : start + size]), np.float32) * factor
        data[start : start + size] = values.astype(np.float32).tobytes()
    xml.with_suffix(".bin").write_bytes(bytes(data))


@needs_openvino
@posix_only
def test_openvino_cache_folder_is_private(converted):
    *_, folder, _ = converted
    assert _mode(folder) == 0o700


@needs_openvino
@pytest.mark.slow
def test_a_cached_network_with_scaled_weights_is_converted_again(converted, tmp_path, caplog):
    desc, x, ref, *_ = converted
    folder, xml = _copy_cache(converted, tmp_path)
    _scale_weights(xml, 1.5)
    with caplog.at_level(logging.WARNING):
        net = openvino_backend.OpenVinoNetwork(desc, cache=folder)
        out = net(x)
    assert net.converted == [None]  # not read from the cache
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=0)
    assert len(_warnings(caplog)) == 1 and xml.name in caplog.text
    again = openvino_backend.OpenVinoNetwork(desc, cache=folder)  # the new IR is sealed
    torch.testing.assert_close(again(x), ref, atol=1e-4, rtol=0)
    assert again.converted == []


@needs_openvino
@posix_only
@pytest.mark.slow
def test_a_cache_folder_of_another_user_is_not_read_even_with_a_matching_seal(
    converted, tmp_path, monkeypatch, caplog
):
    desc, x, ref, *_ = converted
    folder, xml = _copy_cache(converted, tmp_path)
    _scale_weights(xml, 1.5)
    net = openvino_backend.OpenVinoNetwork(desc, cache=folder)
    cache.write_seal([xml, xml.with_suffix(".bin")], net.weights_digest)  # anyone can
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert float((net(x) - ref).abs().max()) > 0.01  # in one's own folder it would be run
    monkeypatch.setattr(cache, "_user_id", lambda: os.getuid() + 1)
    with caplog.at_level(logging.WARNING, logger="engine.cache"):
        foreign = openvino_backend.OpenVinoNetwork(desc, cache=folder)
        out = foreign(x)
    assert foreign.cache is None and foreign.converted == [None]  # converted in memory
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=0)
    assert "another user" in caplog.text
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # left alone
