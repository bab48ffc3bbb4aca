"""A Triton image classification client in the manner of Triton's stock ``image_client`` example,
written from tritonclient's documented API only: it imports nothing of wrn-deploy.

It asks the server what the model takes (metadata and configuration: one input with a declared
``format``, NCHW or NHWC, and one output), reads each image with Pillow, resizes it to the input's
size, converts it to the input's datatype with no scaling (the stock client's ``--scaling NONE``:
raw 0-255 pixels), lays it out as the format says, and asks for the top class through Triton's
classification extension (``class_count``), which answers ``score:index:label`` strings.

    python stock_image_client.py -m MODEL -u localhost:8000 -i http [-b BATCH] IMAGE...

prints one line per image: ``IMAGE<TAB>INDEX<TAB>LABEL``.
"""

import argparse
import sys

import numpy as np
from PIL import Image
from tritonclient.utils import triton_to_np_dtype


def describe(protocol_module, client, model: str, protocol: str) -> dict:
    """What the model takes, checked as a stock image client checks it."""
    kw = {"as_json": True} if protocol == "grpc" else {}
    meta = client.get_model_metadata(model, **kw)
    config = client.get_model_config(model, **kw)
    config = config.get("config", config)
    if len(meta["inputs"]) != 1 or len(meta["outputs"]) != 1:
        sys.exit(f"expected one input and one output, got {len(meta['inputs'])} and {len(meta['outputs'])}")
    inp, out = meta["inputs"][0], meta["outputs"][0]
    fmt = config["input"][0].get("format", "FORMAT_NONE")
    if fmt not in ("FORMAT_NCHW", "FORMAT_NHWC"):
        sys.exit(f"unexpected input format {fmt}, expecting FORMAT_NCHW or FORMAT_NHWC")
    batching = int(config.get("max_batch_size", 0)) > 0
    dims = [int(d) for d in inp["shape"]][1 if batching else 0:]
    c, h, w = dims if fmt == "FORMAT_NCHW" else (dims[2], dims[0], dims[1])
    return {"input": inp["name"], "output": out["name"], "datatype": inp["datatype"], "format": fmt,
            "c": c, "h": h, "w": w, "batching": batching}


def preprocess(path: str, m: dict) -> np.ndarray:
    """The image as the model's input: resized, the input's datatype, no scaling, its layout."""
    img = Image.open(path).convert("RGB" if m["c"] == 3 else "L")
    pixels = np.array(img.resize((m["w"], m["h"]), Image.BILINEAR))
    if pixels.ndim == 2:
        pixels = pixels[:, :, np.newaxis]
    pixels = pixels.astype(triton_to_np_dtype(m["datatype"]))
    return np.transpose(pixels, (2, 0, 1)) if m["format"] == "FORMAT_NCHW" else pixels


def classify(module, client, model: str, m: dict, batch: np.ndarray) -> list:
    request = module.InferInput(m["input"], list(batch.shape), m["datatype"])
    request.set_data_from_numpy(batch)
    want = module.InferRequestedOutput(m["output"], class_count=1)
    answer = client.infer(model, [request], outputs=[want]).as_numpy(m["output"])
    rows = answer.reshape(len(batch), -1)[:, 0]
    out = []
    for entry in rows:
        text = entry.decode() if isinstance(entry, bytes) else str(entry)
        _score, index, *label = text.split(":")
        out.append((int(index), ":".join(label)))
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model-name", required=True)
    ap.add_argument("-u", "--url", default="localhost:8000")
    ap.add_argument("-i", "--protocol", choices=["http", "grpc"], default="http")
    ap.add_argument("-b", "--batch-size", type=int, default=1)
    ap.add_argument("images", nargs="+")
    args = ap.parse_args(argv)
    if args.protocol == "grpc":
        import tritonclient.grpc as module
    else:
        import tritonclient.http as module
    client = module.InferenceServerClient(url=args.url)
    m = describe(module, client, args.model_name, args.protocol)
    step = args.batch_size if m["batching"] else 1
    for i in range(0, len(args.images), step):
        names = args.images[i:i + step]
        batch = np.stack([preprocess(p, m) for p in names])
        for name, (index, label) in zip(names, classify(module, client, args.model_name, m, batch)):
            print(f"{name}\t{index}\t{label}")


if __name__ == "__main__":
    main()
