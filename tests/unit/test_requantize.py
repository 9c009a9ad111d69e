"""The faster copy of packaged weights: converted once, every value kept, cached, and never in the way."""

from __future__ import annotations

import gguf
import numpy as np
import pytest

from rudder_agent.llm import requantize
from rudder_agent.llm.embedded import SMOLLM2_ALIAS, SMOLLM2_SHIPPED_ALIAS, resolve_gguf


def _tiny_gguf(path, rng):
    """A small GGUF in the wheel's layout: Q4_1 matrices, an F32 norm, a string array and a file type."""
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_file_type(int(gguf.LlamaFileType.MOSTLY_Q4_1))
    w.add_token_list(["<a>", "b", "c"])
    w.add_context_length(64)
    mats = {"blk.0.attn_q.weight": rng.standard_normal((8, 64)).astype(np.float32),
            "token_embd.weight": rng.standard_normal((3, 64)).astype(np.float32)}
    quant = {n: gguf.quants.quantize(m, gguf.GGMLQuantizationType.Q4_1) for n, m in mats.items()}
    norm = rng.standard_normal(64).astype(np.float32)
    for n, q in quant.items():
        w.add_tensor(n, q, raw_dtype=gguf.GGMLQuantizationType.Q4_1)
    w.add_tensor("blk.0.attn_norm.weight", norm)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return {n: gguf.quants.dequantize(q, gguf.GGMLQuantizationType.Q4_1) for n, q in quant.items()}, norm


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(requantize.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_copy_keeps_metadata_and_every_weight_within_q8_0_rounding(tmp_path, cache):
    src = tmp_path / "m.Q4_1.gguf"
    values, norm = _tiny_gguf(src, np.random.default_rng(0))
    out = requantize.faster_copy(src)
    assert out != src and out.parent == cache and out.is_file()
    r = gguf.GGUFReader(out)
    tensors = {t.name: t for t in r.tensors}
    assert r.fields["general.file_type"].contents() == int(gguf.LlamaFileType.MOSTLY_Q8_0)
    assert r.fields["tokenizer.ggml.tokens"].contents() == ["<a>", "b", "c"]
    assert r.fields["llama.context_length"].contents() == 64
    for name, want in values.items():
        t = tensors[name]
        assert t.tensor_type == gguf.GGMLQuantizationType.Q8_0
        got = gguf.quants.dequantize(t.data, t.tensor_type)
        # within one Q8_0 level of its 32-value block (half a level of rounding, the rest the fp16 scale);
        # the wheel's Q4_1 levels are ~8x coarser, so the copy changes no weight by more than a fraction of one
        level = np.abs(want).reshape(-1, 32).max(axis=1, keepdims=True) / 127
        assert np.all(np.abs(got - want).reshape(-1, 32) <= level)
    assert tensors["blk.0.attn_norm.weight"].tensor_type == gguf.GGMLQuantizationType.F32
    assert np.array_equal(tensors["blk.0.attn_norm.weight"].data, norm)


def test_it_is_converted_once_and_again_when_the_source_changes(tmp_path, cache, monkeypatch):
    src = tmp_path / "m.gguf"
    _tiny_gguf(src, np.random.default_rng(1))
    calls = []
    real = requantize._convert
    monkeypatch.setattr(requantize, "_convert", lambda *a: (calls.append(a), real(*a)))
    first = requantize.faster_copy(src)
    assert requantize.faster_copy(src) == first and len(calls) == 1
    _tiny_gguf(src, np.random.default_rng(2))  # new weights, new fingerprint
    assert requantize.faster_copy(src) != first and len(calls) == 2
    assert not list(cache.glob(".*.part"))  # no half-written copy left


def test_a_failed_conversion_serves_the_shipped_weights(tmp_path, cache):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    assert requantize.faster_copy(bad) == bad
    assert not [p for p in cache.iterdir() if p.suffix == ".gguf"]


@pytest.mark.llm
def test_the_alias_serves_the_copy_and_the_shipped_alias_the_wheel_file(cache):
    fast, shipped = resolve_gguf(SMOLLM2_ALIAS), resolve_gguf(SMOLLM2_SHIPPED_ALIAS)
    assert shipped.name.endswith("Q4_1.gguf") and fast.parent == cache and ".Q8_0." in fast.name
    kinds = {t.tensor_type.name for t in gguf.GGUFReader(fast).tensors}
    assert "Q4_1" not in kinds and "Q8_0" in kinds
