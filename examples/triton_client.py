"""Classify image files with a WRN served by Triton, over HTTP or gRPC.

    wrn-deploy triton runs/m.onnx -o repo --backend python --name wrn
    wrn-deploy serve repo &
    python examples/triton_client.py --model wrn --card repo/wrn/card.json cat.png dog.jpg   # HTTP, :8000
    python examples/triton_client.py --model wrn --grpc --url 127.0.0.1:8001 cat.png

What the model takes is in its card (REPO/MODEL/card.json, or the model's config): RGB values in
[0, 1], N x 3 x S x S, and the graph normalises them itself, so the client must not. Images are
resized so the short side is S * 256/224 and centre-cropped to S (S = 32: resized to 32 x 32),
the same rule the Python side uses. The images go to Triton through wrn-deploy's TritonRunner (the
same client code bench and the pipeline use), which returns the logits; the top k are named with
the class names of the model's card (REPO/MODEL/card.json) when --card is given, else numbered.
"""

import argparse
import json
import sys

import numpy as np
from PIL import Image


def load(path: str, size: int) -> np.ndarray:
    """One image as a 3 x size x size float32 array in [0, 1]."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        if size <= 64:  # CIFAR-size models take the whole image
            im = im.resize((size, size), Image.BILINEAR)
        else:  # ImageNet-size: resize the short side, then centre-crop
            short = round(size * 256 / 224)
            w, h = im.size
            scale = short / min(w, h)
            im = im.resize((round(w * scale), round(h * scale)), Image.BILINEAR)
            w, h = im.size
            left, top = (w - size) // 2, (h - size) // 2
            im = im.crop((left, top, left + size, top + size))
        return np.asarray(im, dtype=np.float32).transpose(2, 0, 1) / 255.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="+")
    ap.add_argument("--model", required=True)
    ap.add_argument("--url", default=None, help="host:port [default: 127.0.0.1:8000, or :8001 with --grpc]")
    ap.add_argument("--grpc", action="store_true", help="gRPC instead of HTTP")
    ap.add_argument("--topk", type=int, default=3)
    ap.add_argument("--card", help="the model's card.json from the repository (class names)")
    args = ap.parse_args()
    import torch

    from wrn_deploy.runners.triton_runner import TritonRunner

    protocol = "grpc" if args.grpc else "http"
    url = args.url or ("127.0.0.1:8001" if args.grpc else "127.0.0.1:8000")
    classes = json.loads(open(args.card).read())["classes"] if args.card else None
    from wrn_deploy.errors import UserError

    try:
        with TritonRunner(url, args.model, protocol) as runner:
            size = runner.inputs()[0].shape[-1]
            logits = runner.infer(torch.from_numpy(np.stack([load(p, size) for p in args.images])))
    except (UserError, OSError) as e:  # an unreachable server, an unknown model, an unreadable image
        print(f"triton_client: error: {e.format_message() if isinstance(e, UserError) else e}", file=sys.stderr)
        return 2
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    for path, row in zip(args.images, probs):
        best = np.argsort(-row)[:args.topk]
        names = [classes[i] if classes else f"class {i}" for i in best]
        print(path + "  " + "  ".join(f"{name} {row[i]:.3f}" for name, i in zip(names, best)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
