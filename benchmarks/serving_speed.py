"""Serving overhead on the CPU: WRN-16-4 and WRN-28-10 through the local ONNX Runtime runner and
through a real tritonserver (Python backend) over HTTP and gRPC, on real CIFAR-10 test images.

    python benchmarks/serving_speed.py --data-dir /tmp/cifar10 [--archs wrn-16-4,wrn-28-10] [-o docs/serving-cpu.md]

Weights are random (speed does not depend on them); the card names CIFAR-10's classes so the shared
test images can be used. Each table is what `wrn-deploy bench` prints.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wrn_deploy.arch import create_model  # noqa: E402
from wrn_deploy.card import Step, new_card, versions  # noqa: E402
from wrn_deploy.checkpoint import save_checkpoint  # noqa: E402

CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def checkpoint(arch: str, folder: Path) -> Path:
    path = folder / f"{arch}.safetensors"
    card = new_card(arch, CIFAR10, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
                    Step("benchmark", {"weights": "random"}, versions()), dataset={"name": "cifar10"})
    save_checkpoint(path, create_model(arch, 10).state_dict(), card)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True, help="CIFAR-10 as train/ and test/ class folders")
    ap.add_argument("--archs", default="wrn-16-4,wrn-28-10")
    ap.add_argument("--requests", default="200,60", help="timed requests per row, per arch")
    ap.add_argument("--concurrency", default="1,4,8,16")
    ap.add_argument("-o", "--output", help="write all tables to this Markdown file")
    args = ap.parse_args()
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch, requests in zip(args.archs.split(","), args.requests.split(",")):
            onnx = Path(tmp) / f"{arch}.onnx"
            run = [sys.executable, "-m", "wrn_deploy"]
            subprocess.run([*run, "export", checkpoint(arch, Path(tmp)), "-o", onnx, "--no-verify"], check=True,
                           capture_output=True)
            out = Path(tmp) / f"{arch}.md"
            subprocess.run([*run, "bench", onnx, "--data-dir", args.data_dir, "--requests", requests,
                            "--concurrency", args.concurrency, "-o", out], check=True)
            tables.append(out.read_text())
    if args.output:
        Path(args.output).write_text("\n".join(tables))


if __name__ == "__main__":
    main()
