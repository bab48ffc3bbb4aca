"""Everything a training run needs, resolved from the zoo recipe and the command-line overrides."""

from dataclasses import asdict, dataclass, field, fields


@dataclass
class TrainConfig:
    arch: str
    dataset: str
    out: str
    data_dir: str | None = None
    epochs: int = 200
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    milestones: tuple = (60, 120, 160)
    gamma: float = 0.2
    dropout: float = 0.0
    augment: str = "crop-flip"
    recipe_name: str = ""
    recipe_epochs: int = 200  # the recipe's own length; milestones scale by epochs / recipe_epochs
    seed: int = 0
    split_seed: int = 0
    val_size: int | None = None
    train_images: int | None = None  # train on a seeded subset of the training part (quick trials)
    device: str = "cpu"
    amp: str = "auto"  # auto | off | bf16 | fp16
    channels_last: bool | None = None  # None: on for CUDA
    compile: bool = False
    sync_bn: bool = False  # SyncBatchNorm across GPUs (CUDA only; PyTorch has no CPU version)
    deterministic: bool = False
    resume: bool = False
    force: bool = False  # replace a finished run in ``out``
    skip_bad_images: bool = False
    workers: int = 4
    progress: bool = True
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_recipe(cls, entry, **overrides) -> "TrainConfig":
        """The zoo recipe's fields, then every override that is not None (flags the user gave)."""
        names = {f.name for f in fields(cls)}
        recipe = {k: v for k, v in entry.recipe.to_dict().items() if k in names}
        recipe["milestones"] = tuple(recipe["milestones"])
        given = {k: v for k, v in overrides.items() if v is not None}
        return cls(**{**recipe, "recipe_name": entry.name, "recipe_epochs": entry.recipe.epochs, **given})

    def scaled_milestones(self) -> list:
        scale = self.epochs / self.recipe_epochs
        return sorted({max(1, round(m * scale)) for m in self.milestones})

    def lr_at(self, epoch: int) -> float:
        """Step schedule: lr * gamma^(milestones passed). ``epoch`` counts from 0."""
        passed = sum(1 for m in self.scaled_milestones() if epoch >= m)
        return self.lr * self.gamma**passed

    def recipe_dict(self) -> dict:
        keep = ("epochs", "batch_size", "lr", "momentum", "nesterov", "weight_decay", "gamma",
                "dropout", "augment", "recipe_name", "seed")
        d = {k: v for k, v in asdict(self).items() if k in keep}
        d["milestones"] = self.scaled_milestones()
        return d
