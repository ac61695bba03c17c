"""Installing weights: downloads of the authors' releases from a loopback mirror of
shared/official-weights (sha256, resume, corruption, offline) and imports of local files."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from engine import library
from engine.checkpoints import build_untrained, load_model, read_state_dict, save_checkpoint
from engine.cli import main
from engine.downloads import MIRROR_ENV, download_release, import_weights, sha256_file
from engine.errors import Cancelled, CheckpointError, SRStudioError
from engine.releases import RELEASES, find_releases
from tests.mirror import serve_mirror, unreachable_url

SD_X2 = find_releases("A2F-SD-x2")[0]


@pytest.fixture
def mirror(shared_dir):
    with serve_mirror(shared_dir / "official-weights") as m:
        yield m


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch) -> Path:
    """User data under tmp_path, and an empty bundled folder the tests may fill."""
    monkeypatch.setenv("SRSTUDIO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    bundled = tmp_path / "bundled"
    bundled.mkdir()
    monkeypatch.setattr(library, "bundled_dir", lambda: bundled)
    return bundled


def user_files() -> list[str]:
    folder = library.user_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_release_table_matches_the_manifest(shared_dir):
    manifest = (shared_dir / "official-weights" / "MANIFEST.md").read_text()
    rows = re.findall(
        r"^\| (\S+/\S+) \| (\S+) \| x(\d) \| ([0-9a-f]{64}) \| (\S+) \|$", manifest, flags=re.M
    )
    assert len(rows) == len(RELEASES) == 11
    by_path = {r.path: r for r in RELEASES}
    for path, name, scale, sha, url in rows:
        release = by_path[path]
        assert (release.name, release.sha256, release.url) == (f"{name}-x{scale}", sha, url)
        assert release.size == (shared_dir / "official-weights" / path).stat().st_size
    assert [r.name for r in find_releases("a2f sd")] == ["A2F-SD-x2", "A2F-SD-x3", "A2F-SD-x4"]
    with pytest.raises(SRStudioError, match="released: A2F-S-x3"):
        find_releases("A2F-L")


def test_download_verifies_installs_and_is_found(mirror):
    progress: list[tuple[int, int]] = []
    path = download_release(
        SD_X2, base_url=mirror.url, on_progress=lambda d, t: progress.append((d, t))
    )
    assert path == library.user_dir() / "A2F-SD-x2.pt"
    assert sha256_file(path) == SD_X2.sha256
    assert user_files() == ["A2F-SD-x2.json", "A2F-SD-x2.pt"]  # no .part, no temporary files
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["origin"] == "downloaded" and meta["sha256"] == SD_X2.sha256
    assert progress[0] == (0, SD_X2.size) and progress[-1] == (SD_X2.size, SD_X2.size)
    assert mirror.requests == [("/a2f/AAF_SD_x2.pt", None)]
    desc = load_model("A2F-SD-x2")
    assert (desc.source, desc.name, desc.scale) == (str(path), "A2F-SD", 2)
    # Installed already: verified locally, nothing fetched.
    assert download_release(SD_X2, base_url=mirror.url) == path
    assert len(mirror.requests) == 1


def test_corrupt_download_is_rejected_and_not_installed(mirror):
    mirror.corrupt = True
    data = bytearray((mirror.root / SD_X2.path).read_bytes())
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(SRStudioError) as err:
        download_release(SD_X2, base_url=mirror.url)
    message = str(err.value)
    assert SD_X2.sha256 in message and hashlib.sha256(data).hexdigest() in message
    assert "not installed" in message
    assert user_files() == []
    assert library.best_weights("A2F", "SD", 2) is None


def test_interrupted_download_resumes_with_a_range_request(mirror):
    mirror.drop_after = 300_000
    with pytest.raises(SRStudioError, match=r"interrupted after 300,000 of 1,277,645 .*resume"):
        download_release(SD_X2, base_url=mirror.url)
    part = library.user_dir() / "A2F-SD-x2.pt.part"
    assert part.stat().st_size == 300_000
    assert library.best_weights("A2F", "SD", 2) is None  # a partial file is never listed
    progress: list[tuple[int, int]] = []
    path = download_release(
        SD_X2, base_url=mirror.url, on_progress=lambda d, t: progress.append((d, t))
    )
    assert mirror.requests[-1] == ("/a2f/AAF_SD_x2.pt", "bytes=300000-")
    assert progress[0] == (300_000, SD_X2.size)
    assert sha256_file(path) == SD_X2.sha256
    assert not part.exists()


def test_cancel_keeps_the_part_and_a_server_ignoring_range_restarts(mirror):
    calls = iter(range(10**6))
    with pytest.raises(Cancelled):
        download_release(SD_X2, base_url=mirror.url, should_stop=lambda: next(calls) >= 3)
    part = library.user_dir() / "A2F-SD-x2.pt.part"
    kept = part.stat().st_size
    assert 0 < kept < SD_X2.size
    # Spoil the kept bytes: a server that ignores Range sends the whole file, which replaces them.
    part.write_bytes(b"\0" * kept)
    mirror.ignore_range = True
    path = download_release(SD_X2, base_url=mirror.url)
    assert mirror.requests[-1][1] == f"bytes={kept}-"
    assert sha256_file(path) == SD_X2.sha256


def test_offline_gives_a_clear_message(capsys, monkeypatch):
    with unreachable_url() as url:
        with pytest.raises(SRStudioError) as err:
            download_release(SD_X2, base_url=url, timeout=5)
        monkeypatch.setenv(MIRROR_ENV, url)
        assert main(["models", "download", "A2F-SD-x2", "--timeout", "5"]) == 2
    message = str(err.value)
    assert f"{url}/a2f/AAF_SD_x2.pt could not be reached" in message
    assert "srstudio models import PATH" in message
    assert "could not be reached" in capsys.readouterr().err
    assert user_files() == []


def test_downloaded_release_beats_bundled_weights(mirror, isolated_dirs):
    bundled = save_checkpoint(
        isolated_dirs / "A2F-SD-x2.safetensors",
        build_untrained("A2F-SD", 2).model,
        family="A2F",
        variant="SD",
        scale=2,
        metadata={"origin": "trained"},  # as the project's trainer writes it
    )
    assert library.best_weights("A2F", "SD", 2).path == bundled
    assert library.best_weights("A2F", "SD", 2).origin == "bundled"  # what ships is bundled
    path = download_release(SD_X2, base_url=mirror.url)
    best = library.best_weights("A2F", "SD", 2)
    assert (best.path, best.origin) == (path, "downloaded")
    assert load_model("A2F-SD", scale=2).source == str(path)


def test_cli_download_then_listed(mirror, monkeypatch, capsys):
    monkeypatch.setenv(MIRROR_ENV, mirror.url)
    assert main(["models", "download", "A2F-SD-x2"]) == 0
    assert "A2F-SD-x2.pt" in capsys.readouterr().out
    assert main(["models", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    row = next(r for r in listing["models"] if r["name"] == "A2F-SD")
    assert [(w["scale"], w["origin"]) for w in row["weights"]] == [(2, "downloaded")]
    assert row["best"]["2"]["origin"] == "downloaded"
    installed = {r["name"] for r in listing["releases"] if r["installed"]}
    assert installed == {"A2F-SD-x2"}
    assert main(["models"]) == 0
    assert "x2 (downloaded)" in capsys.readouterr().out
    assert main(["models", "download"]) == 2
    assert "--all" in capsys.readouterr().err


def test_import_a_released_file_and_refuse_garbage(shared_dir, tmp_path, capsys):
    source = shared_dir / "official-weights" / "hpinet" / "HPINet-S-x4.pth"
    entry = import_weights(source)
    assert (entry.family, entry.variant, entry.scale, entry.origin) == (
        "HPINet",
        "S",
        4,
        "imported",
    )
    assert entry.metadata["release"] == "HPINet-S-x4"
    assert sha256_file(entry.path) == sha256_file(source)
    assert library.best_weights("HPINet", "S", 4) == entry
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(source.read_bytes()[:500_000])
    with pytest.raises(CheckpointError, match="truncated.pth is not a readable PyTorch checkpoint"):
        import_weights(truncated)
    garbage = tmp_path / "garbage.pt"
    garbage.write_text("not a checkpoint\n" * 100)
    assert main(["models", "import", str(garbage)]) == 2
    assert "error: refused to load garbage.pt" in capsys.readouterr().err
    assert len([w for w in library.installed_weights() if w.origin == "imported"]) == 1


def test_import_foreign_safetensors(shared_dir, tmp_path, capsys):
    sd, _ = read_state_dict(shared_dir / "official-weights" / "a2f" / "AAF_SD_x3.pt")
    foreign = tmp_path / "a2f_sd_x3.safetensors"
    save_file({f"module.{k}": v.contiguous() for k, v in sd.items()}, str(foreign))
    assert main(["models", "import", str(foreign)]) == 0
    assert "A2F-SD x3" in capsys.readouterr().out
    [entry] = library.installed_weights()
    assert (entry.name, entry.scale, entry.origin, entry.path.suffix) == (
        "A2F-SD",
        3,
        "imported",
        ".safetensors",
    )
    loaded = load_model("A2F-SD-x3").model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in sd.items())
    unknown = tmp_path / "unknown.safetensors"
    save_file({"foo.weight": torch.zeros(3)}, str(unknown))
    with pytest.raises(CheckpointError, match="matches none of the known networks"):
        import_weights(unknown)
