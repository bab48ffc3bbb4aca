"""A model served by Triton Inference Server, run like any other model: the Runner contract over
``tritonclient`` (HTTP or gRPC). What the model takes and returns, and the batch sizes it accepts,
come from the server's own model metadata and configuration, read at ``activate()``.
"""

import numpy as np

from wrn_deploy.errors import UserError
from wrn_deploy.runners.base import Runner, TensorMeta, as_input

PROTOCOLS = ("http", "grpc")
HINT = "pip install 'wrn-deploy[triton]' (tritonclient)"


def _client_module(protocol: str):
    import importlib

    if protocol not in PROTOCOLS:
        raise UserError(f"Triton protocol {protocol!r}: use http or grpc")
    try:
        return importlib.import_module(f"tritonclient.{protocol}")
    except ImportError as e:
        raise UserError(f"talking to Triton over {protocol} needs tritonclient[{protocol}]: {HINT} ({e})") from None


class TritonRunner(Runner):
    """``model`` on the server at ``url`` (host:port). Images go out as the model's input datatype;
    logits come back as float32."""

    def __init__(self, url: str, model: str, protocol: str = "http", name: str | None = None):
        super().__init__()
        self.url, self.model, self.protocol = url, model, protocol
        self.name = name or f"triton-{protocol}"  # e.g. triton-python-http: the backend, where the caller knows it
        self._client = None
        self._meta: dict = {}
        self._max_batch = 0

    def check(self) -> None:
        _client_module(self.protocol)

    def _activate(self) -> None:
        from tritonclient.utils import InferenceServerException

        lib = _client_module(self.protocol)
        self._lib = lib
        self._client = lib.InferenceServerClient(self.url)
        grpc = {"as_json": True} if self.protocol == "grpc" else {}
        try:
            self._meta = self._client.get_model_metadata(self.model, **grpc)
            config = self._client.get_model_config(self.model, **grpc)
        except (InferenceServerException, OSError) as e:  # OSError: nothing listens at the URL
            self._client.close()
            why = e.message() if isinstance(e, InferenceServerException) else e.strerror
            raise UserError(f"Triton at {self.url} ({self.protocol}) cannot serve {self.model!r}: "
                            f"{why or e}") from None
        config = config.get("config", config)  # gRPC wraps the configuration
        self._max_batch = int(config.get("max_batch_size", 0))

    def _deactivate(self) -> None:
        self._client.close()
        self._client = None

    def _tensor(self, entry: dict) -> TensorMeta:
        from tritonclient.utils import triton_to_np_dtype

        return TensorMeta(entry["name"], np.dtype(triton_to_np_dtype(entry["datatype"])).name,
                          tuple(int(d) for d in entry["shape"]))

    def _inputs(self) -> list:
        return [self._tensor(e) for e in self._meta["inputs"]]

    def _outputs(self) -> list:
        return [self._tensor(e) for e in self._meta["outputs"]]

    def _batch_range(self) -> tuple:
        return (1, self._max_batch if self._max_batch > 0 else None)

    def _infer(self, images: np.ndarray) -> np.ndarray:
        from tritonclient.utils import InferenceServerException

        (inp,), (out,) = self._meta["inputs"], self._meta["outputs"]
        x = np.ascontiguousarray(as_input(images, np.dtype(self._tensor(inp).dtype)))
        request = self._lib.InferInput(inp["name"], list(x.shape), inp["datatype"])
        request.set_data_from_numpy(x)
        want = [self._lib.InferRequestedOutput(out["name"])]
        try:
            result = self._client.infer(self.model, [request], outputs=want)
        except (InferenceServerException, OSError) as e:
            why = (e.message() if isinstance(e, InferenceServerException) else e.strerror) or e
            raise UserError(f"Triton at {self.url} ({self.protocol}) failed on {self.model!r} with images of shape "
                            f"{tuple(x.shape)}: {why}") from None
        return result.as_numpy(out["name"]).astype(np.float32)
