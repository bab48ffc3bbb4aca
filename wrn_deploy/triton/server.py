"""Running a real ``tritonserver``: found on PATH (NVIDIA's containers) or taken from the
``nvidia-pytriton`` wheel (the ``serve`` extra: Triton with its Python backend only).

The server runs in its own process group and is told to stop when wrn-deploy dies (Linux
``PR_SET_PDEATHSIG``), so no server outlives its ``serve``. It binds 127.0.0.1 unless asked.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from wrn_deploy.errors import UserError


@dataclass(frozen=True)
class TritonBinary:
    exe: Path
    backends: Path
    env: dict = field(default_factory=dict)   # what the binary needs in its environment
    source: str = ""


def _pytriton_dist() -> TritonBinary | None:
    """pytriton's server with the Python-backend stub for this interpreter, prepared once in a cache."""
    import importlib.util

    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0])
    dist, libs = root / "tritonserver", root.parent / "nvidia_pytriton.libs"
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    stub = dist / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not (dist / "bin" / "tritonserver").exists() or not stub.exists():
        return None
    from importlib import metadata

    cache = Path.home() / ".cache" / "wrn-deploy" / f"tritonserver-{metadata.version('nvidia-pytriton')}-py{version}"
    if not (cache / "backends" / "python" / "triton_python_backend_stub").exists():
        tmp = cache.with_name(cache.name + f".{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(dist, tmp, ignore=shutil.ignore_patterns("python_backend_stubs", "__pycache__"))
        shutil.copy(stub, tmp / "backends" / "python" / "triton_python_backend_stub")
        try:
            tmp.rename(cache)
        except OSError:  # another process prepared it first
            shutil.rmtree(tmp, ignore_errors=True)
    # The stub links libpython: the interpreter's own, not the system's (which differs here).
    lib_path = [str(libs), sysconfig.get_config_var("LIBDIR") or ""]
    return TritonBinary(cache / "bin" / "tritonserver", cache / "backends",
                        {"LD_LIBRARY_PATH": ":".join(p for p in lib_path if p)}, "nvidia-pytriton")


def find_tritonserver() -> TritonBinary | None:
    on_path = shutil.which("tritonserver")
    if on_path:
        return TritonBinary(Path(on_path), Path(os.environ.get("TRITON_BACKENDS", "/opt/tritonserver/backends")),
                            source="PATH")
    return _pytriton_dist()


def require_tritonserver() -> TritonBinary:
    found = find_tritonserver()
    if found is None:
        raise UserError("no tritonserver found: install the 'serve' extra (pip install 'wrn-deploy[serve]') or "
                        "run inside NVIDIA's Triton container")
    return found


def config_backend(folder: Path) -> str:
    """The backend a model folder's config.pbtxt names ('' where it names none or cannot be read)."""
    import re

    try:
        text = (Path(folder) / "config.pbtxt").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    found = re.search(r'^\s*backend\s*:\s*"([^"\n]*)"', text, re.MULTILINE)
    return found.group(1) if found else ""


def missing_backend(binary: TritonBinary, backend: str) -> str | None:
    """Why ``binary`` cannot load a model of ``backend`` (Triton loads BACKENDS/NAME/libtriton_NAME.so),
    or None where it has it or its backends folder cannot be listed (the server then says)."""
    if not backend or not binary.backends.is_dir() or (binary.backends / backend).is_dir():
        return None
    if binary.source == "nvidia-pytriton":
        return f"nvidia-pytriton's tritonserver has only the Python backend, no {backend}"
    return f"this tritonserver has no {backend} backend (no {binary.backends / backend})"


def check_backends(repo, binary: TritonBinary, models: tuple = ()) -> None:
    """Refuse, in one line and before a server starts, a repository with a model (of ``models``, or
    any) whose backend the server lacks (an openvino or onnxruntime model under nvidia-pytriton's
    server, which has only the Python backend)."""
    for folder in sorted(p for p in Path(repo).iterdir() if p.is_dir() and (not models or p.name in models)):
        why = missing_backend(binary, config_backend(folder))
        if why:
            raise UserError(f"model {folder.name} needs Triton's {config_backend(folder)} backend, but {why}: serve "
                            "it in NVIDIA's Triton container, or write it with `wrn-deploy triton --backend python`")


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise UserError(f"port {port} on {host} is not free ({e.strerror}); choose another") from None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """Runs in the child before exec: its own process group, and SIGTERM when the parent dies."""
    os.setsid()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class Server:
    """A running tritonserver: ``with Server(...) as s:`` starts it, waits until ready, stops it."""

    repo: Path
    host: str = "127.0.0.1"
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    models: tuple = ()            # serve only these (from a private folder of links to them)
    log: Path | None = None       # where the server's output goes [default: discarded]
    process: subprocess.Popen | None = None
    served: Path | None = None    # the folder the server reads: repo, or the private one

    @property
    def http(self) -> str:
        return f"{self.host}:{self.http_port}"

    @property
    def grpc(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    def command(self, binary: TritonBinary) -> list:
        cmd = [str(binary.exe), f"--model-repository={self.served or self.repo}",
               f"--backend-directory={binary.backends}",
               f"--http-address={self.host}", f"--http-port={self.http_port}",
               f"--grpc-address={self.host}", f"--grpc-port={self.grpc_port}",
               f"--metrics-address={self.host}", f"--metrics-port={self.metrics_port}",
               "--exit-on-error=true", "--strict-readiness=true", "--log-verbose=0"]
        # No --model-control-mode=explicit: it opens the repository API on the port, through which
        # anyone who can reach it could load a model with their own model.py.
        return cmd

    def start(self, timeout: float = 120) -> "Server":
        binary = require_tritonserver()
        check_backends(self.repo, binary, self.models)
        if self.models:
            self.served = Path(tempfile.mkdtemp(prefix="wrn-deploy-models-"))
            for m in self.models:
                (self.served / m).symlink_to((Path(self.repo) / m).resolve(), target_is_directory=True)
        try:
            return self._start(binary, timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, binary, timeout: float) -> "Server":
        for port in (self.http_port, self.grpc_port, self.metrics_port):
            check_port_free(self.host, port)
        env = dict(os.environ, **binary.env)
        if binary.env.get("LD_LIBRARY_PATH") and os.environ.get("LD_LIBRARY_PATH"):
            env["LD_LIBRARY_PATH"] = binary.env["LD_LIBRARY_PATH"] + ":" + os.environ["LD_LIBRARY_PATH"]
        # The Python backend's stub imports model.py with the python3 first on PATH: this one.
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(self.command(binary), env=env, stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        self.wait_ready(timeout)
        return self

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.http}/v2/health/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.process.poll() is not None:
                raise UserError(f"tritonserver exited with code {self.process.returncode} before it was ready"
                                + self._why())
            if time.monotonic() > deadline:
                self.stop()
                raise UserError(f"tritonserver was not ready after {timeout:.0f} s" + self._why())
            time.sleep(0.2)

    def _why(self) -> str:
        """The first model-load failure in the server's log, and where the log is."""
        if not self.log or not Path(self.log).exists():
            return " (--log FILE keeps its log)"
        lines = Path(self.log).read_text(errors="replace").splitlines()
        failed = next((line.split('] "', 1)[-1].rstrip('"') for line in lines if "failed to load" in line), None)
        return (f": {failed[:300]}" if failed else "") + f"; its log: {self.log}"

    def stop(self, grace: float = 15) -> int | None:
        """SIGTERM to the server's process group (its backend stubs too), then SIGKILL if it lingers."""
        if self.process is None:
            self._drop_served()
            return None
        if self.process.poll() is None:
            for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
                try:
                    os.killpg(self.process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.process.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        try:  # stubs left in the group after the server itself exited
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._drop_served()
        return self.process.returncode

    def _drop_served(self) -> None:
        if self.served is not None:
            shutil.rmtree(self.served, ignore_errors=True)
            self.served = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def served_repository(repo, models: tuple = (), log=None) -> Server:
    """A server on free loopback ports for ``repo`` (``with served_repository(...) as s``): the one
    way bench, the pipeline and the checks serve a repository they made themselves."""
    return Server(Path(repo), http_port=free_port(), grpc_port=free_port(), metrics_port=free_port(),
                  models=tuple(models), log=Path(log) if log else None)


@contextlib.contextmanager
def served_artifact(artifact, opts, log_name: str = "server.log", **trust):
    """Write a repository for ``artifact`` (``ServeOptions`` ``opts``; ``trust``: ``verify_key``,
    ``allow_unverified``) in a temporary folder and serve it; yields the running Server. Everything
    is removed on the way out."""
    from wrn_deploy.triton.repository import write_repository

    with tempfile.TemporaryDirectory(prefix="wrn-deploy-serve-") as tmp:
        write_repository(artifact, Path(tmp) / "repo", opts, check_load=False, **trust)
        with served_repository(Path(tmp) / "repo", log=Path(tmp) / log_name) as server:
            yield server
