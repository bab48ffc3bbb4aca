"""The model zoo: one TOML recipe per paper configuration, kept in the repository's ``models/``
(installed inside the package as ``wrn_deploy.models``)."""

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from wrn_deploy.data.table import NAMES, TABLE
from wrn_deploy.errors import UserError


@dataclass(frozen=True)
class Recipe:
    dropout: float
    epochs: int
    batch_size: int
    lr: float
    milestones: tuple
    gamma: float
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    augment: str = "crop-flip"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["milestones"] = list(self.milestones)
        return d


@dataclass(frozen=True)
class ZooEntry:
    name: str
    arch: str
    dataset: str
    num_classes: int
    recipe: Recipe
    paper_error: float | None = None
    paper_source: str = ""
    extra: dict = field(default_factory=dict)


def _models_dir() -> Path:
    # pyproject maps the repository's models/ to the package wrn_deploy.models, so a wheel carries
    # the recipes; an editable install or a checkout finds them in the same place.
    return Path(str(resources.files("wrn_deploy.models")))


def _load(path: Path) -> ZooEntry:
    raw = tomllib.loads(path.read_text())
    r = dict(raw["recipe"])
    r["milestones"] = tuple(r.get("milestones", ()))
    paper = raw.get("paper", {})
    return ZooEntry(name=path.stem, arch=raw["arch"], dataset=raw["dataset"],
                    num_classes=int(raw["num_classes"]), recipe=Recipe(**r),
                    paper_error=paper.get("error"), paper_source=paper.get("source", ""))


def load_zoo() -> list[ZooEntry]:
    return [_load(p) for p in sorted(_models_dir().glob("*.toml"))]


def find_recipe(arch: str, dataset: str) -> ZooEntry:
    """The recipe for (arch, dataset), else the one of the dataset's family with the arch replaced."""
    zoo = load_zoo()
    for e in zoo:
        if e.arch == arch and e.dataset == dataset:
            return e
    if dataset not in TABLE:
        raise UserError(f"unknown dataset {dataset!r}; valid: {', '.join(NAMES)}")
    family = TABLE[dataset].recipe_family
    candidates = [e for e in zoo if e.dataset == family]
    if not candidates:
        raise UserError(f"no recipe in {_models_dir()} for dataset family {family!r}")
    return candidates[0]
