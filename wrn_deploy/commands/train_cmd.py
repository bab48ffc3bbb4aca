"""``wrn-deploy train``: the paper's recipe from models/, any field overridable by a flag."""

import click

from wrn_deploy.constants import DATASETS


@click.command()
@click.option("--arch", default="wrn-16-1", show_default=True,
              help="Architecture, e.g. wrn-40-4, wrn-28-10, wrn-40-2-B(1,3,1), wrn-50-2.")
@click.option("--dataset", type=click.Choice(DATASETS), default="synthetic", show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), help="Where the dataset lives (or downloads to).")
@click.option("--out", type=click.Path(file_okay=False), help="Run folder [default: runs/ARCH-DATASET].")
@click.option("--epochs", type=click.IntRange(1), help="Epochs; the recipe's lr milestones scale with it.")
@click.option("--batch-size", type=click.IntRange(1), help="Global batch size (all processes together).")
@click.option("--lr", type=click.FloatRange(0, min_open=True), help="Initial learning rate.")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), help="Dropout between convolutions.")
@click.option("--weight-decay", type=click.FloatRange(0), help="L2 weight decay.")
@click.option("--augment", type=click.Choice(["crop-flip", "none", "imagenet"]), help="Training augmentation.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds init, data order, augmentation.")
@click.option("--val-size", type=click.IntRange(1), help="Images held out of train for checkpoint selection.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--amp", type=click.Choice(["auto", "off", "bf16", "fp16"]), default="auto", show_default=True,
              help="Mixed precision; auto = bf16 on GPUs that have it, fp16 otherwise, off on CPU.")
@click.option("--channels-last/--no-channels-last", default=None, help="NHWC memory layout [default: on GPUs].")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the training step.")
@click.option("--sync-bn", is_flag=True, help="SyncBatchNorm across GPUs under torchrun (CUDA only).")
@click.option("--deterministic", is_flag=True, help="Deterministic kernels (bit-exact resume on CPU).")
@click.option("--resume", is_flag=True, help="Continue from OUT/last.safetensors.")
@click.option("--workers", type=click.IntRange(0), default=4, show_default=True,
              help="Loader processes for on-disk (ImageNet-size) datasets.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bars.")
def train(arch, dataset, data_dir, out, epochs, batch_size, lr, dropout, weight_decay, augment, seed,
          val_size, device, amp, channels_last, compile_, sync_bn, deterministic, resume, workers, progress):
    """Train a WRN with the recipe from models/ (flags override it).

    \b
    Writes OUT/best.safetensors (best on the validation split, with the test accuracy measured
    once at the end), OUT/last.safetensors (for --resume), a JSON card beside each,
    OUT/metrics.jsonl, OUT/curves.png and OUT/summary.json. Several GPUs: torchrun --nproc-per-node N.
    """
    import torch

    from wrn_deploy.arch import parse_arch
    from wrn_deploy.errors import UserError
    from wrn_deploy.train.config import TrainConfig
    from wrn_deploy.train.loop import Trainer
    from wrn_deploy.zoo import find_recipe

    spec = parse_arch(arch)
    entry = find_recipe(spec.name, dataset)
    r = entry.recipe
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but PyTorch sees no CUDA GPU")
    cfg = TrainConfig(
        arch=spec.name, dataset=dataset, out=out or f"runs/{spec.name}-{dataset}", data_dir=data_dir,
        epochs=epochs or r.epochs, batch_size=batch_size or r.batch_size, lr=lr or r.lr,
        momentum=r.momentum, nesterov=r.nesterov,
        weight_decay=r.weight_decay if weight_decay is None else weight_decay,
        milestones=r.milestones, gamma=r.gamma, dropout=r.dropout if dropout is None else dropout,
        augment=augment or r.augment, recipe_name=entry.name, recipe_epochs=r.epochs, seed=seed,
        val_size=val_size, device=device, amp=amp, channels_last=channels_last, compile=compile_, sync_bn=sync_bn,
        deterministic=deterministic, resume=resume, workers=workers, progress=progress)
    summary = Trainer(cfg).run()
    if summary:
        click.echo(f"best epoch {summary['best_epoch']}: validation {summary['val_acc']:.2f}%, "
                   f"test {summary['test_acc']:.2f}% ({dataset} test split, evaluated once)")
        click.echo(f"checkpoint: {summary['checkpoint']}")
