"""Training throughput (images/s) of WRN-16-4 and WRN-28-10 at batch 128, with the training step
that ``wrn-deploy train`` uses: SGD+Nesterov, bf16 autocast and channels_last on a GPU.

    python benchmarks/train_speed.py [--device cuda] [--steps 50] [--compile]
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from common import machine_report  # noqa: E402
from wrn_deploy.arch import create_model  # noqa: E402
from wrn_deploy.arch.stats import count_macs  # noqa: E402
from wrn_deploy.data.batches import crop_flip, draw_crop_flip  # noqa: E402

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}  # dense bf16 tensor FLOP/s


def bench(arch: str, device: str, steps: int, warmup: int, batch: int, compile_: bool) -> dict:
    dev = torch.device(device)
    model = create_model(arch, 10, dropout=0.3).to(dev)
    cuda = dev.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if compile_ else model
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    data = torch.randint(0, 256, (batch * 4, 3, 32, 32), dtype=torch.uint8, device=dev)
    labels = torch.randint(0, 10, (batch * 4,), device=dev)
    gen = torch.Generator().manual_seed(0)

    def step(i):
        idx = torch.arange(i % 4 * batch, (i % 4 + 1) * batch, device=dev)
        x = crop_flip(data[idx].float().div_(255), *draw_crop_flip(batch, gen))
        if cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
            loss = F.cross_entropy(step_model(x).float(), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(warmup):
        step(i)
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(steps):
        step(i)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    macs = count_macs(create_model(arch, 10), 32)
    ips = steps * batch / seconds
    return {"arch": arch, "images_per_s": ips, "tflops": 6 * macs * ips / 1e12}  # fwd+bwd = 3x fwd, 2 FLOP/MAC


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=None, help="timed steps [default: 50 GPU, 3 CPU]")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--archs", default="wrn-16-4,wrn-28-10")
    args = ap.parse_args()
    gpu = args.device.startswith("cuda")
    steps = args.steps or (50 if gpu else 3)
    print(machine_report())
    print(f"batch {args.batch}, {steps} timed steps after {10 if gpu else 1} warm-up, "
          f"{'bf16 autocast + channels_last' if gpu else 'fp32'}{', torch.compile' if args.compile else ''}")
    peak = next((v for k, v in PEAK_BF16.items() if gpu and k in torch.cuda.get_device_name()), None)
    for arch in args.archs.split(","):
        r = bench(arch, args.device, steps, 10 if gpu else 1, args.batch, args.compile)
        share = f", {100 * r['tflops'] * 1e12 / peak:.0f}% of bf16 peak" if peak else ""
        print(f"{arch:>10}: {r['images_per_s']:8.1f} images/s  ({r['tflops']:.2f} TFLOP/s{share})")


if __name__ == "__main__":
    main()
