"""The training loop: SGD with Nesterov momentum and a step schedule, mixed precision on GPUs,
checkpoint selection on the held-out validation split, and one test evaluation at the end.

Resuming is exact because nothing random carries across epochs: the data order, the augmentation
and dropout of epoch e are all seeded from (seed, e). A run resumed from ``last`` replays the
interrupted epoch from its start with the optimizer state saved at the end of the previous one.
"""

import contextlib
import json
import math
import shutil
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

from wrn_deploy.arch import create_model, default_input_size
from wrn_deploy.arch.normalize import Normalized
from wrn_deploy.card import Step, new_card, versions
from wrn_deploy.checkpoint import load_checkpoint, save_checkpoint
from wrn_deploy.data import load_dataset
from wrn_deploy.data.load import classes_differ, fewer_training_images
from wrn_deploy.data.batches import batches
from wrn_deploy.errors import UserError
from wrn_deploy.fileio import ensure_writable_dir, folder_lock, write_json, write_text
from wrn_deploy.train import distributed as D
from wrn_deploy.train.config import TrainConfig
from wrn_deploy.train.plots import plot_curves


def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 1_000_003 + epoch


def amp_dtype(cfg: TrainConfig, device: torch.device):
    if cfg.amp == "off" or (cfg.amp == "auto" and device.type != "cuda"):
        return None
    if cfg.amp == "fp16" or (cfg.amp == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


def _autocast(device: torch.device, dtype):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


@torch.no_grad()
def evaluate(net, split, device, batch_size: int = 500, channels_last: bool = False, dtype=None):
    """(mean loss, top-1 %) of ``net`` on a split, in eval mode."""
    net.eval()
    loss = correct = n = 0.0
    for x, y in batches(split, batch_size, device):
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(device, dtype):
            logits = net(x)
        loss += F.cross_entropy(logits.float(), y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        n += len(y)
    return loss / n, 100.0 * correct / n


def _optimizer_state(opt, params) -> dict:
    out = {}
    for i, p in enumerate(params):
        buf = opt.state.get(p, {}).get("momentum_buffer")
        if buf is not None:
            out[f"optim.{i}.momentum_buffer"] = buf
    return out


def _load_optimizer_state(opt, params, tensors: dict, device) -> None:
    for i, p in enumerate(params):
        buf = tensors.get(f"optim.{i}.momentum_buffer")
        if buf is not None:
            opt.state[p]["momentum_buffer"] = buf.to(device)


class Trainer:
    def __init__(self, cfg: TrainConfig):
        self._made_folder = not Path(cfg.out).exists()
        try:
            self._setup(cfg)
        except BaseException:
            self._forget_empty_run(Path(cfg.out))
            raise

    def _forget_empty_run(self, out: Path) -> None:
        """A run that fails before it saved anything leaves no trace: not even the folder it made."""
        if self._made_folder and out.is_dir() and {p.name for p in out.iterdir()} <= {".lock"}:
            (out / ".lock").unlink(missing_ok=True)
            out.rmdir()

    def _setup(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.device = torch.device(cfg.device)
        self.dist = D.init_distributed(cfg.device)
        if self.dist.world > 1 and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(self.device)
        if cfg.batch_size % self.dist.world:
            raise UserError(f"--batch-size {cfg.batch_size} must divide evenly over {self.dist.world} processes")
        self.out = Path(cfg.out)
        self._lock = contextlib.ExitStack()
        if self.dist.is_main:
            ensure_writable_dir(self.out)
            # Held until the process ends: a second train into this folder is refused.
            self._lock.enter_context(folder_lock(self.out, "wrn-deploy train"))
            self._claim_run_folder()
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.data = load_dataset(cfg.dataset, cfg.data_dir, cfg.val_size, cfg.split_seed,
                                 progress=cfg.progress and self.dist.is_main, skip_bad=cfg.skip_bad_images)
        self.data.split("train")  # data with no training images (ImageNet's validation folder alone) stops here
        if cfg.train_images:
            self.data = fewer_training_images(self.data, cfg.train_images, cfg.split_seed)
        torch.manual_seed(cfg.seed)  # weight initialisation
        self.model = create_model(cfg.arch, self.data.num_classes, cfg.dropout)
        self.net = Normalized(self.model, self.data.mean, self.data.std).to(self.device)
        self.channels_last = cfg.channels_last if cfg.channels_last is not None else self.device.type == "cuda"
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.params = list(self.model.parameters())
        if self.dist.is_main:
            self._check_free_space()
        self.opt = torch.optim.SGD(self.params, lr=cfg.lr, momentum=cfg.momentum, dampening=0,
                                   nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)
        self.dtype = amp_dtype(cfg, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)
        self.start_epoch, self.best_acc, self.best_epoch, self.history = 0, -1.0, -1, []
        if cfg.resume:
            self._resume()
        if len(self.data.train) < cfg.batch_size:
            raise UserError(f"--batch-size {cfg.batch_size} is larger than the {len(self.data.train)} training "
                            "images left after the held-out part (--val-size)")
        self.step_net = self._wrap(self.net)

    RUN_FILES = ("best.safetensors", "best.json", "last.safetensors", "last.json", "metrics.jsonl",
                 "curves.png", "summary.json")

    def _claim_run_folder(self) -> None:
        """A finished or interrupted run in OUT is continued (--resume), replaced (--force) or refused."""
        found = [n for n in self.RUN_FILES if (self.out / n).exists()]
        if not found or self.cfg.resume:
            return
        if not self.cfg.force:
            raise UserError(f"{self.out} already holds a run ({', '.join(found[:3])}); pass --resume to continue "
                            "it, --force to replace it, or choose another --output")
        for n in found:
            (self.out / n).unlink()

    def _check_free_space(self) -> None:
        """Fail now, not after an epoch: best, last (with momentum) and their temporaries need room."""
        need = 6 * 4 * sum(p.numel() for p in self.params) + (1 << 20)
        free = shutil.disk_usage(self.out).free
        if free < need:
            raise UserError(f"{self.out} has {free / 1e6:.1f} MB free; checkpoints need about {need / 1e6:.1f} MB")

    def _wrap(self, net):
        if self.dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            if self.cfg.sync_bn and self.device.type == "cuda":
                net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
            net = DDP(net, device_ids=ids)
        if self.cfg.compile:
            net = torch.compile(net)
        return net

    # -- checkpoints ---------------------------------------------------------------------------
    def card(self, epoch: int, metrics: dict):
        step = Step("train", self.cfg.recipe_dict(), versions())
        return new_card(self.cfg.arch, self.data.classes, default_input_size(self.cfg.arch), self.data.mean,
                        self.data.std, step, dropout=self.cfg.dropout, dataset=self.data.identity,
                        training={"epoch": epoch, "metrics": metrics})

    def _save(self, name: str, epoch: int, metrics: dict, with_state: bool) -> None:
        tensors = _optimizer_state(self.opt, self.params) if with_state else None
        meta = {"epoch": epoch, "best_val_acc": self.best_acc, "best_epoch": self.best_epoch,
                "scaler_scale": self.scaler.get_scale() if self.scaler.is_enabled() else None}
        save_checkpoint(self.out / f"{name}.safetensors", self.model.state_dict(),
                        self.card(epoch, metrics), tensors, meta if with_state else None)

    def _resume(self) -> None:
        path = self.out / "last.safetensors"
        if not path.exists():
            raise UserError(f"--resume: no checkpoint at {path}")
        ckpt = load_checkpoint(path)
        card = ckpt.card
        self._check_same_data(card, path)
        if card.arch != self.cfg.arch:
            raise UserError(f"--resume: {path} is a {card.arch}, not a {self.cfg.arch}")
        try:
            self.model.load_state_dict(ckpt.state)
        except RuntimeError:
            raise UserError(f"--resume: the weights in {path} do not fit {self.cfg.arch}") from None
        _load_optimizer_state(self.opt, self.params, ckpt.train_tensors, self.device)
        meta = ckpt.train_meta
        if meta.get("scaler_scale") and self.scaler.is_enabled():
            self.scaler.update(meta["scaler_scale"])
        self.start_epoch = meta.get("epoch", card.training.get("epoch", -1)) + 1
        self.best_acc, self.best_epoch = meta.get("best_val_acc", -1.0), meta.get("best_epoch", -1)
        metrics_file = self.out / "metrics.jsonl"
        if metrics_file.exists():
            rows = [json.loads(line) for line in metrics_file.read_text().splitlines() if line.strip()]
            self.history = [r for r in rows if r["epoch"] < self.start_epoch]

    def _check_same_data(self, card, path) -> None:
        """Resuming on other data would carry on with shifted labels or other images: refuse it."""
        differ = classes_differ(self.data.classes, card.classes)
        if differ:
            raise UserError(f"--resume: {path} does not fit the data: {self.cfg.dataset} {differ}")
        old, new = card.dataset, self.data.identity
        for key, what in (("name", "dataset"), ("train_sha256", "training images"), ("val_size", "held-out size"),
                          ("split_seed", "split seed"), ("train_images", "training subset (--train-images)")):
            if (old.get(key) is not None or key == "train_images") and old.get(key) != new.get(key):
                raise UserError(f"--resume: the {what} differ from the run's ({str(new.get(key))[:16]} now, "
                                f"{str(old.get(key))[:16]} in {path})")

    # -- one epoch ----------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> dict:
        cfg, dev = self.cfg, self.device
        lr = cfg.lr_at(epoch)
        for g in self.opt.param_groups:
            g["lr"] = lr
        seed = epoch_seed(cfg.seed, epoch)
        torch.manual_seed(seed + self.dist.rank)  # dropout masks
        self.step_net.train()
        steps = len(self.data.train) // cfg.batch_size
        bar = self._bar(steps, epoch)
        loss_sum = correct = n = 0.0
        t0 = time.perf_counter()
        it = batches(self.data.train, cfg.batch_size, dev, shuffle=True, augment=cfg.augment != "none",
                     seed=seed, rank=self.dist.rank, world=self.dist.world, drop_last=True,
                     workers=cfg.workers)
        for x, y in it:
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with _autocast(dev, self.dtype):
                logits = self.step_net(x)
                loss = F.cross_entropy(logits.float(), y)
            self.opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
            loss_sum += loss.detach() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            n += len(y)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(img_s=f"{n * self.dist.world / (time.perf_counter() - t0):.0f}",
                                lr=f"{lr:.3g}", refresh=False)
        if bar is not None:
            bar.close()
        if n == 0:
            raise UserError("no full batch this epoch: lower --batch-size")
        loss_sum, correct, n = D.all_sum([float(loss_sum), float(correct), n], self.dist, dev)
        if not math.isfinite(loss_sum):
            raise UserError(f"training diverged in epoch {epoch + 1}: the loss is {loss_sum / n}; nothing of this "
                            "epoch was saved (try a lower --lr)")
        seconds = time.perf_counter() - t0
        return {"epoch": epoch, "lr": lr, "train_loss": loss_sum / n, "train_acc": 100 * correct / n,
                "images_per_s": n / seconds, "epoch_s": seconds}

    def _bar(self, steps: int, epoch: int):
        if not (self.cfg.progress and self.dist.is_main):
            return None
        from tqdm import tqdm

        return tqdm(total=steps, desc=f"epoch {epoch + 1}/{self.cfg.epochs}", unit="step",
                    leave=False, mininterval=0.5, dynamic_ncols=True)

    # -- the run --------------------------------------------------------------------------------
    def run(self) -> dict:
        try:
            return self._run()
        except BaseException:
            if self.dist.is_main:
                self._lock.close()
                self._forget_empty_run(self.out)
            raise

    def _run(self) -> dict:
        cfg = self.cfg
        for epoch in range(self.start_epoch, cfg.epochs):
            row = self.train_epoch(epoch)
            if self.dist.is_main:
                row["val_loss"], row["val_acc"] = evaluate(self.net, self.data.val, self.device,
                                                           channels_last=self.channels_last,
                                                           dtype=self.dtype)
                if not math.isfinite(row["val_loss"]):
                    raise UserError(f"training diverged in epoch {epoch + 1}: the validation loss is "
                                    f"{row['val_loss']}; nothing of this epoch was saved (try a lower --lr)")
                self._after_epoch(row)
            D.barrier(self.dist)
        summary = self._finish() if self.dist.is_main else {}
        D.barrier(self.dist)
        D.shutdown(self.dist)
        self._lock.close()
        return summary

    def _after_epoch(self, row: dict) -> None:
        epoch = row["epoch"]
        if row["val_acc"] > self.best_acc:
            self.best_acc, self.best_epoch = row["val_acc"], epoch
            self._save("best", epoch, {"val_acc": row["val_acc"], "val_loss": row["val_loss"]}, False)
        self._save("last", epoch, {"val_acc": row["val_acc"], "val_loss": row["val_loss"]}, True)
        self.history.append(row)
        write_text(self.out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in self.history))
        plot_curves(self.history, self.out / "curves.png", f"{self.cfg.arch} on {self.cfg.dataset}")
        print(f"epoch {epoch + 1:>3}/{self.cfg.epochs}  lr {row['lr']:.4g}  train loss "
              f"{row['train_loss']:.4f} acc {row['train_acc']:.2f}%  val loss {row['val_loss']:.4f} "
              f"acc {row['val_acc']:.2f}%  {row['images_per_s']:.0f} img/s", flush=True)

    def _finish(self) -> dict:
        """Evaluate the best checkpoint on the test split, once, and record it in its card."""
        best_path = self.out / "best.safetensors"
        ckpt = load_checkpoint(best_path)
        self.model.load_state_dict(ckpt.state)
        test_loss, test_acc = evaluate(self.net, self.data.test, self.device,
                                       channels_last=self.channels_last, dtype=self.dtype)
        training = ckpt.card.training
        metrics = dict(training.get("metrics", {}), test_acc=test_acc, test_loss=test_loss)
        save_checkpoint(best_path, ckpt.state, replace(ckpt.card, training=dict(training, metrics=metrics)))
        summary = {"arch": self.cfg.arch, "dataset": self.cfg.dataset, "epochs": self.cfg.epochs,
                   "best_epoch": self.best_epoch + 1, "val_acc": self.best_acc, "test_acc": test_acc,
                   "test_loss": test_loss, "checkpoint": str(best_path), "dataset_identity": self.data.identity}
        write_json(self.out / "summary.json", summary)
        return summary
