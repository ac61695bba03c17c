"""The authors' released checkpoints: where to fetch them and the sha256 each must have.

Copied from shared/official-weights/MANIFEST.md. `path` is the file's place in a mirror laid out
like that folder (SRSTUDIO_RELEASES_URL or base_url point at its root); `url` is the original.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import PurePosixPath

from engine.archs import registry
from engine.errors import SRStudioError

_A2F = "https://github.com/wxxxxxxh/A2F-SR/raw/master/checkpoint"
_HPINET = "https://github.com/passerer/HPINet/raw/cc/checkpoints"


@dataclass(frozen=True)
class Release:
    family: str
    variant: str
    scale: int
    path: str  # relative to a mirror's root, e.g. "a2f/AAF_SD_x2.pt"
    url: str
    sha256: str
    size: int | None = None  # bytes, where known

    @property
    def name(self) -> str:
        return f"{self.family}-{self.variant}-x{self.scale}"

    @property
    def filename(self) -> str:
        """The installed file's name in the user data directory."""
        return self.name + PurePosixPath(self.path).suffix

    def mirror_url(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/{self.path}"


def _a2f(variant: str, scale: int, sha256: str, size: int) -> Release:
    folder = f"AAF_{variant}_x{scale}"
    return Release(
        "A2F", variant, scale, f"a2f/{folder}.pt", f"{_A2F}/{folder}/model_best.pt", sha256, size
    )


def _hpinet(variant: str, scale: int, sha256: str, size: int) -> Release:
    file = f"HPINet-{variant}-x{scale}.pth"
    return Release("HPINet", variant, scale, f"hpinet/{file}", f"{_HPINET}/{file}", sha256, size)


RELEASES: tuple[Release, ...] = (
    _a2f("S", 3, "bf209a2d721dbdf88ab96e89179855e18de766706111f12cb121803b1fa068a2", 1_310_446),
    _a2f("S", 4, "75076b947c16fef754736ae6a377415febdad84e1803463870888d6d6a041078", 1_337_238),
    _a2f("SD", 2, "919e07923db16e739ada396707c7c9f460f4bab3d9e06707159f8e2b594c95cf", 1_277_645),
    _a2f("SD", 3, "ec0c035936549a07c91e87ea1b95d159786972857bf6290b1922fd130fa9918d", 1_288_089),
    _a2f("SD", 4, "775135f46a3fea00f7d901f833f80a0ab05dbe1ae6c36b9deb352cddac70c473", 1_302_853),
    _a2f("M", 3, "148efc52c1647d87ff8700adce9f531b46e9188e518e70975a6950b527eb00eb", 4_049_190),
    _a2f("M", 4, "3c5690c0f34b0b5be5a467a794b27c7355b94752baf47d207e3f6a28a8c56300", 4_075_982),
    _hpinet("S", 4, "675abc363c9a2ea92a42d54d546bbdd19118cab10bb35b3fa1eeaa18158d0f58", 1_974_687),
    _hpinet("M", 2, "d2c6b13f459de9cf0c30877b7e7a28e78fa8b42b31e08fb30bb03d791b08b448", 3_244_837),
    _hpinet("M", 3, "b15f30423e115edf031da2ca280f3f3e4897c8a4e80fa416441dd5004876fb8b", 3_810_469),
    _hpinet("M", 4, "567043542711fb3171ac0c4487a1d867698df46613cdb49e8d0b7de936d9b223", 3_698_017),
)


# What the app offers to fetch on first start: the authors' fastest network (A2F-SD) and their
# sharpest one (HPINet-M), at every scale released.
RECOMMENDED = ("A2F-SD", "HPINet-M")


def recommended_releases() -> list[Release]:
    return [r for r in RELEASES if f"{r.family}-{r.variant}" in RECOMMENDED]


def by_sha256(sha256: str) -> Release | None:
    return next((r for r in RELEASES if r.sha256 == sha256.lower()), None)


def find_releases(name: str) -> list[Release]:
    """'A2F-SD-x2' -> that release; 'A2F-SD' -> every scale released for it; 'HPINet' -> all."""
    text = name.strip().replace(" ", "-")
    family = variant = scale = None
    try:
        family, variant, scale = registry.parse_model_name(text)
    except ValueError:
        with contextlib.suppress(ValueError):  # a bare family name
            family = registry.get_family(text)
    found = [
        r
        for r in RELEASES
        if family is not None
        and r.family == family.name
        and variant in (None, r.variant)
        and scale in (None, r.scale)
    ]
    if not found:
        known = ", ".join(r.name for r in RELEASES)
        raise SRStudioError(f"no released weights match {name!r}; released: {known}")
    return found


def format_size(size: int | None) -> str:
    """Bytes in the units a download dialog uses (KB below a MiB, MB with one decimal)."""
    if size is None:
        return "-"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / 2**20:.1f} MB"
