"""``wrn-deploy train``: the paper's recipe from models/, any field overridable by a flag."""

import click

from wrn_deploy.commands.options import (Finite, batch_size_option, data_options, device_option, force_option,
                                         output_option, progress_option, resolve_device)


@click.command()
@click.option("--arch", default="wrn-16-1", show_default=True,
              help="Architecture, e.g. wrn-40-4, wrn-28-10, wrn-40-2-B(1,3,1), wrn-50-2.")
@data_options(default="synthetic")
@output_option("Run folder [default: runs/ARCH-DATA].", name="out", folder=True, old=["--out"])
@click.option("--epochs", type=click.IntRange(1), help="Epochs; the recipe's lr milestones scale with it.")
@batch_size_option("Images per training step, all processes together [default: the recipe's].")
@click.option("--lr", type=Finite(0, min_open=True), help="Initial learning rate.")
@click.option("--dropout", type=Finite(0, 1, max_open=True), help="Dropout between convolutions.")
@click.option("--weight-decay", type=Finite(0), help="L2 weight decay.")
@click.option("--augment", type=click.Choice(["crop-flip", "none", "imagenet"]), help="Training augmentation.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds init, data order, augmentation.")
@click.option("--val-size", type=click.IntRange(1), help="Images held out of train for checkpoint selection.")
@click.option("--train-images", type=click.IntRange(1),
              help="Train on this many of the training images (a subset drawn by the split seed; validation and "
                   "test unchanged): a quick trial of a recipe.")
@device_option(help="Where PyTorch trains.")
@click.option("--amp", type=click.Choice(["auto", "off", "bf16", "fp16"]), default="auto", show_default=True,
              help="Mixed precision; auto = bf16 on GPUs that have it, fp16 otherwise, off on CPU.")
@click.option("--channels-last/--no-channels-last", default=None, help="NHWC memory layout [default: on GPUs].")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the training step.")
@click.option("--sync-bn", is_flag=True, help="SyncBatchNorm across GPUs under torchrun (CUDA only).")
@click.option("--deterministic", is_flag=True, help="Deterministic kernels (bit-exact resume on CPU).")
@click.option("--resume", is_flag=True, help="Continue from OUTPUT/last.safetensors.")
@force_option(help="Replace the run already in OUTPUT (its checkpoints are lost).")
@click.option("--workers", type=click.IntRange(0), default=4, show_default=True,
              help="Loader processes for on-disk (ImageNet-size) datasets.")
@progress_option
def train(arch, data, data_dir, skip_bad_images, out, epochs, batch_size, lr, dropout, weight_decay, augment, seed,
          val_size, train_images, device, amp, channels_last, compile_, sync_bn, deterministic, resume, force, workers, progress):
    """Train a WRN with the recipe from models/ (flags override it).

    \b
    Writes OUTPUT/best.safetensors (best on the validation split, with the test accuracy measured
    once at the end), OUTPUT/last.safetensors (for --resume), a JSON card beside each,
    OUTPUT/metrics.jsonl, OUTPUT/curves.png and OUTPUT/summary.json. Several GPUs: torchrun
    --nproc-per-node N.
    """
    from wrn_deploy.arch import parse_arch
    from wrn_deploy.errors import UserError
    from wrn_deploy.train.config import TrainConfig
    from wrn_deploy.train.loop import Trainer
    from wrn_deploy.zoo import find_recipe

    spec = parse_arch(arch)
    entry = find_recipe(spec.name, data)
    if resume and force:
        raise UserError("--resume continues the run in OUT and --force replaces it: choose one")
    device = resolve_device(device)
    cfg = TrainConfig.from_recipe(
        entry, arch=spec.name, dataset=data, out=out or f"runs/{spec.name}-{data}", data_dir=data_dir,
        epochs=epochs, batch_size=batch_size, lr=lr, dropout=dropout, weight_decay=weight_decay, augment=augment,
        seed=seed, val_size=val_size, train_images=train_images, device=device, amp=amp, channels_last=channels_last, compile=compile_,
        sync_bn=sync_bn, deterministic=deterministic, resume=resume, force=force, workers=workers,
        progress=progress, skip_bad_images=skip_bad_images)
    summary = Trainer(cfg).run()
    if summary:
        click.echo(f"best epoch {summary['best_epoch']}: validation {summary['val_acc']:.2f}%, "
                   f"test {summary['test_acc']:.2f}% ({data} test split, evaluated once)")
        click.echo(f"checkpoint: {summary['checkpoint']}")
