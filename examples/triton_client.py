"""Classify image files with a WRN served by Triton, over HTTP or gRPC.

    wrn-deploy triton runs/m.onnx --repo repo --backend python --name wrn
    wrn-deploy serve repo &
    python examples/triton_client.py --model wrn cat.png dog.jpg            # HTTP on 127.0.0.1:8000
    python examples/triton_client.py --model wrn --grpc --url 127.0.0.1:8001 cat.png

What the model takes is in its card (REPO/MODEL/card.json, or the model's config): RGB values in
[0, 1], N x 3 x S x S, and the graph normalises them itself, so the client must not. Images are
resized so the short side is S * 256/224 and centre-cropped to S (S = 32: resized to 32 x 32),
the same rule the Python side uses. Triton's classification extension returns the top k with the
labels from the repository's labels.txt.
"""

import argparse
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
    args = ap.parse_args()
    if args.grpc:
        import tritonclient.grpc as client_lib
    else:
        import tritonclient.http as client_lib
    client = client_lib.InferenceServerClient(args.url or ("127.0.0.1:8001" if args.grpc else "127.0.0.1:8000"))
    meta = client.get_model_metadata(args.model)
    inputs = meta.inputs if args.grpc else meta["inputs"]
    size = int((inputs[0].shape if args.grpc else inputs[0]["shape"])[-1])
    batch = np.stack([load(p, size) for p in args.images])
    inp = client_lib.InferInput("images", list(batch.shape), "FP32")
    inp.set_data_from_numpy(batch)
    out = client_lib.InferRequestedOutput("logits", class_count=args.topk)
    result = client.infer(args.model, [inp], outputs=[out]).as_numpy("logits")
    for path, row in zip(args.images, result):
        best = [entry.decode().split(":") for entry in row]  # "score:index:label"
        print(path + "  " + "  ".join(f"{label} {float(score):.3f}" for score, _, label in best))
    return 0


if __name__ == "__main__":
    sys.exit(main())
