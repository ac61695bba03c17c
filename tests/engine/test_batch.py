from __future__ import annotations

import hashlib
import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms
from torch import nn

from engine.batch import (
    PROGRESS_STEPS,
    BatchJob,
    FileRecord,
    collect_inputs,
    eta_seconds,
    render_name,
    run_batch,
)
from engine.checkpoints import load_model
from engine.descriptor import ModelDescriptor
from engine.errors import SRStudioError
from engine.imaging.io import ImageData, read_image, write_image
from engine.imaging.resize import imresize
from engine.inference.upscaler import UpscaleOptions, Upscaler

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
GOOD = ["one.png", "deep16.png", "rgba.png", "pal.gif", "gray.png", "cmyk.jpg", "rotated.jpg"]
BAD = {
    "corrupt.png": "corrupt or truncated",
    "empty.png": "empty file",
    "text.png": "not an image",
    "bomb.png": "decompression bomb",
}


def _u8(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def make_zoo(folder: Path) -> None:
    """Every kind of good and bad input the batch must cope with."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_u8((1, 1, 3))).save(folder / "one.png")
    deep = np.random.default_rng(1).integers(0, 65536, (6, 5, 3)).astype(np.float32) / 65535
    write_image(folder / "deep16.png", ImageData(torch.from_numpy(deep).permute(2, 0, 1), None, 16))
    rgba = _u8((8, 10, 4))
    rgba[..., 3] = np.linspace(0, 255, 10).astype(np.uint8)[None, :]
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    pal = np.zeros((6, 6), np.uint8)
    pal[2:4, 2:4] = 1
    gif = Image.fromarray(pal, "P")
    gif.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    gif.save(folder / "pal.gif", transparency=0)
    Image.fromarray(_u8((7, 9)), "L").save(folder / "gray.png")
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(folder / "cmyk.jpg", quality=95)
    rotated = np.zeros((10, 20, 3), np.uint8)
    rotated[:, :10] = 255  # displayed (orientation 6) white on top
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rotated).save(folder / "rotated.jpg", exif=exif.tobytes(), icc_profile=SRGB)
    good = io.BytesIO()
    Image.fromarray(_u8((32, 32, 3))).save(good, "PNG")
    (folder / "corrupt.png").write_bytes(good.getvalue()[:200])
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.png").write_text("this is text, not a PNG\n")
    ihdr = struct.pack(">IIBBBBB", 50_000, 50_000, 8, 2, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 99))
    (folder / "bomb.png").write_bytes(bomb + _chunk(b"IEND", b""))


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def out_name(stem: str, ext: str) -> str:
    return f"{stem}_Bicubic_x2.{ext}"


@pytest.fixture
def bicubic2() -> Upscaler:
    return Upscaler(load_model("bicubic", scale=2), UpscaleOptions(tile=0, device="cpu"))


def test_zoo_batch(tmp_path: Path, bicubic2: Upscaler) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    make_zoo(src)
    before = snapshot(src)
    seen: list[FileRecord] = []
    progress: list[tuple[int, int]] = []
    job = BatchJob(inputs=[src], output_dir=out)
    report = run_batch(
        job, bicubic2, on_file=seen.append, on_progress=lambda d, t: progress.append((d, t))
    )
    assert snapshot(src) == before  # inputs byte-identical
    by_name = {Path(r.input).name: r for r in report.records}
    assert sorted(by_name) == sorted(GOOD + list(BAD))
    assert sorted(r.input for r in seen) == sorted(r.input for r in report.records)
    for name, reason in BAD.items():
        assert by_name[name].status == "failed" and reason in by_name[name].reason, name
        assert not Path(by_name[name].output or "").exists()
    for name in GOOD:
        rec = by_name[name]
        assert rec.status == "done", (name, rec.reason)
        w, h = rec.input_size  # type: ignore[misc]
        assert (
            rec.output_size == (2 * w, 2 * h)
            and rec.output_bytes == Path(rec.output).stat().st_size
        )
    assert progress[-1] == (11 * PROGRESS_STEPS, 11 * PROGRESS_STEPS)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        out_name(Path(n).stem, "png" if n.endswith((".png", ".gif")) else "jpg") for n in GOOD
    )

    one = read_image(out / out_name("one", "png"))
    assert (one.width, one.height) == (2, 2)
    deep = read_image(out / out_name("deep16", "png"))
    assert deep.bit_depth == 16 and (deep.width, deep.height) == (10, 12)
    assert (out / out_name("deep16", "png")).read_bytes()[24] == 16  # IHDR bit depth
    with Image.open(out / out_name("rgba", "png")) as im:
        assert im.mode == "RGBA" and im.size == (20, 16)
        alpha = np.asarray(im)[..., 3].astype(np.float32) / 255
    src_alpha = torch.from_numpy(np.asarray(Image.open(src / "rgba.png"))[..., 3] / 255.0)
    expected = imresize(src_alpha[None].float(), 2).clamp(0, 1)[0].numpy()
    assert np.abs(alpha - expected).max() <= 1 / 255 + 1e-6
    with Image.open(out / out_name("pal", "png")) as im:
        px = np.asarray(im)
        assert im.mode == "RGBA" and px[0, 0, 3] == 0 and px[6, 6, 3] == 255
        assert px[6, 6, 1] > 200
    with Image.open(out / out_name("gray", "png")) as im:
        assert im.mode == "L" and im.size == (18, 14)
    with Image.open(out / out_name("cmyk", "jpg")) as im:
        assert im.mode == "RGB" and "icc_profile" not in im.info
        assert np.asarray(im)[8, 8, 0] > 200
    with Image.open(out / out_name("rotated", "jpg")) as im:
        assert im.size == (20, 40) and im.info["icc_profile"] == SRGB
        assert im.getexif().get(0x0112) == 1
        px = np.asarray(im)
        assert px[3, 10].min() > 200 and px[36, 10].max() < 60

    text = report.to_text()
    data = json.loads(report.to_json())
    assert data["counts"] == {"done": 7, "skipped": 0, "failed": 4, "cancelled": 0}
    assert all(name in text for name in BAD) and "decompression bomb" in text
    files = {Path(f["input"]).name: f for f in data["files"]}
    assert files["bomb.png"]["reason"] and files["one.png"]["output_size"] == [2, 2]
    assert files["gray.png"]["input_bytes"] == (src / "gray.png").stat().st_size
    json_path, text_path = report.write(tmp_path / "report.json")
    assert json.loads(json_path.read_text())["counts"]["failed"] == 4
    assert text_path.read_text() == text

    # resume: every output exists, nothing is rewritten
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = run_batch(BatchJob(inputs=[src], output_dir=out, skip_existing=True), bicubic2)
    assert {r.status for r in again.records if Path(r.input).name in GOOD} == {"skipped"}
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    assert snapshot(src) == before


def test_never_writes_an_input(tmp_path: Path, bicubic2: Upscaler) -> None:
    Image.fromarray(_u8((4, 4, 3))).save(tmp_path / "a.png")
    Image.fromarray(_u8((4, 4, 3), 1)).save(tmp_path / "b.png")
    before = snapshot(tmp_path)
    job = BatchJob(inputs=[tmp_path], output_dir=tmp_path, name_template="{stem}.{ext}")
    report = run_batch(job, bicubic2)
    assert [r.status for r in report.records] == ["failed", "failed"]
    assert all("is one of the inputs" in r.reason for r in report.records)
    assert snapshot(tmp_path) == before
    # the default template writes next to the inputs without touching them
    report = run_batch(BatchJob(inputs=[tmp_path], output_dir=tmp_path), bicubic2)
    assert [r.status for r in report.records] == ["done", "done"]
    assert {k: v for k, v in snapshot(tmp_path).items() if k in before} == before


def test_output_name_collisions_are_reported(tmp_path: Path, bicubic2: Upscaler) -> None:
    Image.fromarray(_u8((4, 4, 3))).save(tmp_path / "a.png")
    Image.fromarray(_u8((4, 4, 3))).save(tmp_path / "a.jpg")
    job = BatchJob(inputs=[tmp_path], output_dir=tmp_path / "out", format="png")
    report = run_batch(job, bicubic2)
    statuses = sorted((r.status, r.reason) for r in report.records)
    assert statuses[0] == ("done", "")
    assert statuses[1][0] == "failed" and "already taken" in statuses[1][1]


def _four_images(folder: Path, size: int = 16) -> None:
    folder.mkdir()
    for i in range(4):
        Image.fromarray(_u8((size, size, 3), i)).save(folder / f"im{i}.png")


def test_cancel_between_files(tmp_path: Path, bicubic2: Upscaler) -> None:
    _four_images(tmp_path / "in")
    done: list[FileRecord] = []
    job = BatchJob(inputs=[tmp_path / "in"], output_dir=tmp_path / "out")
    report = run_batch(job, bicubic2, on_file=done.append, should_stop=lambda: len(done) >= 1)
    assert [r.status for r in report.records] == ["done"] + ["cancelled"] * 3
    assert report.cancelled and len(done) == 4
    assert [p.name for p in (tmp_path / "out").iterdir()] == [out_name("im0", "png")]


def test_cancel_inside_a_file_leaves_no_partial_file(tmp_path: Path) -> None:
    _four_images(tmp_path / "in", size=32)
    up = Upscaler(load_model("bicubic", scale=2), UpscaleOptions(tile=8))
    done: list[FileRecord] = []
    checks_after_first: list[int] = []

    def stop() -> bool:  # true on the third check after the first file: within the second
        if len(done) == 1:
            checks_after_first.append(1)
        return len(checks_after_first) > 2

    job = BatchJob(inputs=[tmp_path / "in"], output_dir=tmp_path / "out")
    report = run_batch(job, up, on_file=done.append, should_stop=stop)
    assert [r.status for r in report.records] == ["done", "cancelled", "cancelled", "cancelled"]
    assert report.records[1].reason == "cancelled while running"
    assert [p.name for p in (tmp_path / "out").iterdir()] == [out_name("im0", "png")]


class FailsOnWidth(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == self.width:
            raise RuntimeError("boom on this size")
        return nn.functional.interpolate(x, scale_factor=2, mode="nearest")


def test_a_failing_file_does_not_stop_the_batch(tmp_path: Path) -> None:
    for i, w in enumerate((5, 7, 9)):
        Image.fromarray(_u8((4, w, 3), i)).save(tmp_path / f"f{i}.png")
    desc = ModelDescriptor(
        family="Test", variant="x", scale=2, params=0, input_range=1.0, size_multiple=1,
        tiling_safe=True, tile_overlap=0, source="untrained", model=FailsOnWidth(7),
    )  # fmt: skip
    report = run_batch(
        BatchJob(inputs=[tmp_path], output_dir=tmp_path / "o"),
        Upscaler(desc, UpscaleOptions(tile=0)),
    )
    assert [r.status for r in report.records] == ["done", "failed", "done"]
    assert report.records[1].reason == "RuntimeError: boom on this size"
    assert report.records[1].input_size == (7, 4)


def test_collect_inputs(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    for rel in ("a.png", "b.JPG", "notes.txt", ".hidden.png", "sub/c.webp", "sub/deeper/d.tif"):
        (tmp_path / rel).write_bytes(b"x")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old_result.png").write_bytes(b"x")
    odd = tmp_path / "notes.txt"

    def names(**kw: object) -> list[str]:
        job = BatchJob(output_dir=tmp_path / "out", **kw)  # type: ignore[arg-type]
        return [p.relative_to(tmp_path).as_posix() for p in collect_inputs(job)]

    assert names(inputs=[tmp_path]) == ["a.png", "b.JPG"]
    assert names(inputs=[tmp_path], recursive=True) == [
        "a.png", "b.JPG", "sub/c.webp", "sub/deeper/d.tif",
    ]  # fmt: skip
    assert names(inputs=[str(tmp_path / "*.png"), odd, tmp_path / "a.png"]) == [
        "a.png",
        "notes.txt",
    ]
    assert names(inputs=[str(tmp_path / "**" / "*.webp")], recursive=True) == ["sub/c.webp"]
    assert names(inputs=[tmp_path / "missing.png"]) == ["missing.png"]  # reported later
    assert names(inputs=[str(tmp_path / "*.bmp")]) == []


def test_recursive_outputs_mirror_subfolders(tmp_path: Path, bicubic2: Upscaler) -> None:
    (tmp_path / "in" / "sub").mkdir(parents=True)
    Image.fromarray(_u8((3, 3, 3))).save(tmp_path / "in" / "x.png")
    Image.fromarray(_u8((3, 3, 3))).save(tmp_path / "in" / "sub" / "x.png")
    job = BatchJob(inputs=[tmp_path / "in"], output_dir=tmp_path / "out", recursive=True)
    report = run_batch(job, bicubic2)
    assert [r.status for r in report.records] == ["done", "done"]
    assert (tmp_path / "out" / out_name("x", "png")).is_file()
    assert (tmp_path / "out" / "sub" / out_name("x", "png")).is_file()


def test_name_template_and_format(tmp_path: Path) -> None:
    Image.fromarray(_u8((4, 6, 3))).save(tmp_path / "pic.tiff")
    up = Upscaler(load_model("bicubic", scale=2), UpscaleOptions(tile=0, outscale=1.5))
    job = BatchJob(
        inputs=[tmp_path / "pic.tiff"], output_dir=tmp_path / "o",
        name_template="{index}-{family}-{variant}-{stem}@{scale}.{ext}", format="jpg", quality=80,
    )  # fmt: skip
    report = run_batch(job, up)
    out = Path(report.records[0].output or "")
    assert out.name == "1-Bicubic-MATLAB-pic@1.5.jpg"
    with Image.open(out) as im:
        assert im.format == "JPEG" and im.size == (9, 6)
    kept = run_batch(BatchJob(inputs=[tmp_path / "pic.tiff"], output_dir=tmp_path / "k"), up)
    assert Path(kept.records[0].output or "").name == "pic_Bicubic_x1.5.tiff"
    for bad in ("{nope}.png", "../{stem}.png", "{stem", ""):
        with pytest.raises(SRStudioError):
            render_name(bad, {"stem": "a"})
    with pytest.raises(SRStudioError, match="unknown field"):
        run_batch(BatchJob(inputs=[tmp_path], output_dir=tmp_path / "z", name_template="{x}"), up)
    assert not (tmp_path / "z").exists()


def test_eta() -> None:
    assert eta_seconds(10.0, 0, 100) is None
    assert eta_seconds(10.0, 25, 100) == pytest.approx(30.0)
    assert eta_seconds(10.0, 100, 100) == 0.0
