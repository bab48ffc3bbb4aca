"""Classify image files with a WRN served by Triton, over HTTP or gRPC.

    wrn-deploy triton runs/m.onnx -o repo --backend python --name wrn
    wrn-deploy serve repo &
    python examples/triton_client.py --model wrn --card repo/wrn/card.json cat.png dog.jpg   # HTTP, :8000
    python examples/triton_client.py --model wrn --card repo/wrn/card.json --grpc --url 127.0.0.1:8001 cat.png

What the model takes is in its card (REPO/MODEL/card.json, which `wrn-deploy triton` writes):
RGB values in [0, 1], N x 3 x S x S, normalised by the graph itself (so the client must not), and
the card's preprocess: the shorter side resized with its interpolation, then a centre crop of S (or
no resize: images must be S x S). Each image goes through wrn_deploy.data.preprocess.image_tensor,
the one implementation of that rule (torchvision's Resize and CenterCrop, built from the card);
then through wrn-deploy's TritonRunner (the client code bench and the pipeline use), which sends
it as the input's datatype (0-255 for a raw-pixel model) and returns the logits; the top k are
named with the card's class names.
"""

import argparse
import json
import sys

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="+")
    ap.add_argument("--model", required=True)
    ap.add_argument("--url", default=None, help="host:port [default: 127.0.0.1:8000, or :8001 with --grpc]")
    ap.add_argument("--grpc", action="store_true", help="gRPC instead of HTTP")
    ap.add_argument("--topk", type=int, default=3)
    ap.add_argument("--card", required=True, help="the model's card.json from the repository")
    args = ap.parse_args()
    import torch

    from wrn_deploy.runners.triton_runner import TritonRunner

    protocol = "grpc" if args.grpc else "http"
    url = args.url or ("127.0.0.1:8001" if args.grpc else "127.0.0.1:8000")
    from wrn_deploy.card import Card
    from wrn_deploy.data.preprocess import image_tensor
    from wrn_deploy.errors import UserError

    try:
        with open(args.card, "rb") as f:
            card = Card.from_dict(json.loads(f.read()), args.card)
        images = torch.stack([image_tensor(p, card) for p in args.images])
        with TritonRunner(url, args.model, protocol) as runner:
            if tuple(runner.inputs()[0].shape[-2:]) != (card.input_size, card.input_size):
                raise UserError(f"{args.card} is the card of a {card.input_size}-pixel model; {args.model} takes "
                                f"{runner.inputs()[0].shape}")
            logits = runner.infer(images)
    except json.JSONDecodeError:
        print(f"triton_client: error: {args.card} is not valid JSON", file=sys.stderr)
        return 2
    except (UserError, OSError) as e:  # an unreachable server, an unknown model, an unreadable image
        print(f"triton_client: error: {e.format_message() if isinstance(e, UserError) else e}", file=sys.stderr)
        return 2
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    for path, row in zip(args.images, probs):
        best = np.argsort(-row)[:args.topk]
        names = [card.classes[i] for i in best]
        print(path + "  " + "  ".join(f"{name} {row[i]:.3f}" for name, i in zip(names, best)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
