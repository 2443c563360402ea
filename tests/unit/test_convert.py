"""The JAX -> HF conversion: key map, logit/greedy parity, exact round trip, special ids, and a check that can fail."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

from tinymath import convert, hf_keys, model, runner, specials
from tinymath.config import load_config
from tinymath.errors import UserError
from tinymath.manifest import MANIFEST

# A small cpu-profile-like shape and a shape with the paper's GQA ratio (4) and head_dim (128); vocab 500 -> 512
# rows, so the padded rows are exercised.
SMALL = model.ModelConfig.small(vocab_size=500, num_layers=2, max_seq_len=128, compute_dtype="float32")
GQA4 = model.ModelConfig.tiny(vocab_size=500, num_heads=8, num_kv_heads=2, head_dim=128, max_seq_len=128,
                              compute_dtype="float32")
QUICK = convert.ParityConfig(batch_size=2, prompt_len=8, greedy_tokens=16)


def random_flat(cfg: model.ModelConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Weights with O(1) activations and non-uniform attention (the 0.02 init makes attention nearly uniform,
    which would hide RoPE mistakes); padded vocabulary rows zero, as the JAX model keeps them."""
    rng = np.random.default_rng(seed)
    flat = {}
    for path, shape in model.param_shapes(cfg).items():
        if path.endswith(".scale"):
            flat[path] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:
            flat[path] = (rng.standard_normal(shape) / np.sqrt(shape[0] if path.endswith(".kernel") else 1)
                          ).astype(np.float32)
    flat["embed_tokens.embedding"][cfg.vocab_size:] = 0
    flat["lm_head.kernel"][:, cfg.vocab_size:] = 0
    return flat


def export(cfg: model.ModelConfig, tokenizer, out: Path, seed: int = 0) -> dict[str, np.ndarray]:
    flat = random_flat(cfg, seed)
    convert.export_hf(flat, cfg, out, "2GB")
    tokenizer.save_pretrained(out)
    return flat


def permute_rotary(w: np.ndarray, heads: int) -> np.ndarray:
    """A q/k permutation (interleaved pairs -> halves) that is wrong for a rotate-half model."""
    out, d_in = w.shape
    return w.reshape(heads, out // heads // 2, 2, d_in).transpose(0, 2, 1, 3).reshape(out, d_in)


def test_hf_keys_cover_llama_state_dict_with_matching_shapes():
    hf = LlamaForCausalLM(convert.hf_config(GQA4))
    hf_shapes = {k: tuple(v.shape) for k, v in hf.state_dict().items()}
    exported = hf_keys.to_hf(random_flat(GQA4), GQA4.vocab_size)
    assert {k: v.shape for k, v in exported.items()} == hf_shapes
    assert all(hf_keys.jax_key(hf_keys.hf_key(p)) == p for p in model.param_shapes(GQA4))


@pytest.mark.parametrize("cfg", [SMALL, GQA4], ids=["small", "gqa4_hd128"])
def test_convert_parity_within_tolerance(cfg, tmp_path, tiny_tokenizer):
    flat = export(cfg, tiny_tokenizer, tmp_path)
    report = convert.parity(model.from_flat(cfg, flat), convert.load_hf(tmp_path), QUICK, seed=0)
    assert report["passed"], report
    assert report["max_abs_logit_diff"] <= 1e-4 and report["kl_divergence"] < 1e-8
    assert report["greedy_agreement"] == 1.0 and report["greedy_first_mismatch"] is None
    assert report["hf_logit_columns"] == cfg.vocab_size  # padded rows are not exported: they can never win argmax


def test_convert_roundtrip_bit_exact(tmp_path, tiny_tokenizer):
    flat = export(GQA4, tiny_tokenizer, tmp_path)
    cfg, back = convert.hf_to_jax(tmp_path, GQA4.padded_vocab_size, compute_dtype="float32")
    assert cfg == GQA4
    again = model.flat_params(back)
    assert again.keys() == flat.keys()
    assert all(again[k].dtype == np.float32 and np.array_equal(again[k], flat[k]) for k in flat)


def test_convert_shards_above_max_size(tmp_path):
    flat = random_flat(SMALL)
    convert.export_hf(flat, SMALL, tmp_path, "200KB")
    index = json.loads((tmp_path / convert.INDEX_FILE).read_text())
    assert len(set(index["weight_map"].values())) > 1 and not (tmp_path / convert.SINGLE_FILE).exists()
    _, back = convert.hf_to_jax(tmp_path, SMALL.padded_vocab_size)
    assert all(np.array_equal(v, flat[k]) for k, v in model.flat_params(back).items())


def test_hf_to_jax_reads_bfloat16_release(tmp_path):
    flat = random_flat(SMALL)
    convert.export_hf(flat, SMALL, tmp_path / "f32", "2GB")
    convert.load_hf(tmp_path / "f32").to(torch.bfloat16).save_pretrained(tmp_path / "bf16")
    _, back = convert.hf_to_jax(tmp_path / "bf16", SMALL.padded_vocab_size)
    rounded = {k: torch.from_numpy(v).bfloat16().float().numpy() for k, v in flat.items()}
    assert all(np.array_equal(v, rounded[k]) for k, v in model.flat_params(back).items())


def test_hf_to_jax_refuses_tied_embeddings(tmp_path):
    convert.export_hf(random_flat(SMALL), SMALL, tmp_path, "2GB")
    conf = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**conf, "tie_word_embeddings": True}))
    with pytest.raises(UserError, match="tie_word_embeddings"):
        convert.hf_to_jax(tmp_path)


def test_convert_nonzero_pad_rows_refused():
    flat = random_flat(SMALL)
    flat["lm_head.kernel"][:, -1] = 1.0
    with pytest.raises(UserError, match="padded vocabulary rows"):
        convert.export_hf(flat, SMALL, Path("/nonexistent"), "2GB")


def test_convert_special_ids_agree_everywhere(tmp_path, tiny_tokenizer):
    export(SMALL, tiny_tokenizer, tmp_path)
    convert.check_special_ids(tmp_path, SMALL.vocab_size)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    conf = json.loads((tmp_path / "config.json").read_text())
    gen = json.loads((tmp_path / "generation_config.json").read_text())
    assert tok.bos_token_id is None and conf["bos_token_id"] is None and gen.get("bos_token_id") is None
    assert tok.eos_token_id == conf["eos_token_id"] == gen["eos_token_id"][0] == specials.IM_END_ID
    assert gen["eos_token_id"] == [specials.IM_END_ID, specials.ENDOFTEXT_ID]
    assert tok.pad_token_id == conf["pad_token_id"] == gen["pad_token_id"] == specials.PAD_ID
    conf["eos_token_id"] = 2  # a config that disagrees with the tokenizer
    (tmp_path / "config.json").write_text(json.dumps(conf))
    with pytest.raises(UserError, match="config.json"):
        convert.check_special_ids(tmp_path, SMALL.vocab_size)


def test_convert_generate_stops_at_im_end(tmp_path, tiny_tokenizer):
    export(SMALL, tiny_tokenizer, tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    hf = AutoModelForCausalLM.from_pretrained(tmp_path)
    prompt = tok.apply_chat_template([{"role": "user", "content": "What is 2 + 3?"}], add_generation_prompt=True,
                                     return_tensors="pt", return_dict=True)["input_ids"]
    free = hf.generate(prompt, max_new_tokens=12, eos_token_id=None)[0, prompt.shape[1]:].tolist()
    step = next(i for i in range(1, 12) if free[i] not in free[:i])  # earlier argmaxes survive the swap below
    assert not set(free[:step]) & set(specials.STOP_IDS)
    with torch.no_grad():  # swap two lm_head rows so greedy emits <|im_end|> at `step` instead of free[step]
        w = hf.lm_head.weight
        w[[free[step], specials.IM_END_ID]] = w[[specials.IM_END_ID, free[step]]]
    out = hf.generate(prompt, max_new_tokens=12)[0, prompt.shape[1]:].tolist()  # default generation_config
    assert out == free[:step] + [specials.IM_END_ID]


def test_convert_parity_catches_permuted_rope(tmp_path, tiny_tokenizer):
    flat = export(GQA4, tiny_tokenizer, tmp_path)
    state = load_file(str(tmp_path / convert.SINGLE_FILE))
    for i in range(GQA4.num_layers):
        for name, heads in (("q_proj", GQA4.num_heads), ("k_proj", GQA4.num_kv_heads)):
            key = f"model.layers.{i}.self_attn.{name}.weight"
            state[key] = np.ascontiguousarray(permute_rotary(state[key], heads))
    save_file(state, str(tmp_path / convert.SINGLE_FILE), metadata={"format": "pt"})
    report = convert.parity(model.from_flat(GQA4, flat), convert.load_hf(tmp_path), QUICK, seed=0)
    assert not report["passed"] and report["max_abs_logit_diff"] > 1e-2
    with pytest.raises(convert.ParityError, match="differs"):
        convert.check_parity(report, tmp_path / "parity.json")


def test_convert_configs_load():
    for profile in ("smoke", "cpu", "paper"):
        cfg = load_config(runner.config_path("convert", profile), convert.Config)
        assert cfg.parity.tolerance <= 1e-4 and cfg.parity.dtype == "float32" and cfg.parity.greedy_tokens >= 16


def stage_inputs(root: Path, tokenizer) -> None:
    """Upstream run directories as the pretrain and tokenizer stages leave them."""
    flat = random_flat(SMALL)
    model.save_safetensors(model.from_flat(SMALL, flat), SMALL, root / "pretrain" / "final")
    tokenizer.save_pretrained(root / "tokenizer" / "tokenizer")
    for stage in ("pretrain", "tokenizer"):
        (root / stage / MANIFEST).write_text(json.dumps({"outputs": {}}))


def stage_config(tmp_path: Path) -> Path:
    path = tmp_path / "unit.yaml"
    path.write_text("parity: {batch_size: 2, prompt_len: 8, greedy_tokens: 8}\n")
    return path


def test_convert_stage_writes_release_and_manifest(tmp_path, tiny_tokenizer):
    stage_inputs(tmp_path / "runs" / "unit", tiny_tokenizer)
    out = runner.run_stage("convert", stage_config(tmp_path), runs=tmp_path / "runs")
    assert (out / MANIFEST).is_file() and json.loads((out / "parity.json").read_text())["passed"]
    names = {p.name for p in (out / "hf").iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
            "chat_template.jinja"} <= names
    assert AutoTokenizer.from_pretrained(out / "hf").model_max_length == SMALL.max_seq_len


def test_convert_tokenizer_max_length_is_model_context(tmp_path, tiny_tokenizer):
    tiny_tokenizer.save_pretrained(tmp_path / "tok")
    (tmp_path / "hf").mkdir()
    convert.copy_tokenizer(tmp_path / "tok", tmp_path / "hf", 4096)  # the paper model's context
    tok = AutoTokenizer.from_pretrained(tmp_path / "hf")
    assert tok.model_max_length == 4096 and tok.eos_token_id == specials.IM_END_ID
    assert tok.chat_template == tiny_tokenizer.chat_template


def test_convert_stage_parity_failure_leaves_no_manifest(tmp_path, tiny_tokenizer, monkeypatch):
    stage_inputs(tmp_path / "runs" / "unit", tiny_tokenizer)
    exact = hf_keys.to_hf

    def wrong(flat, vocab_size):
        state = exact(flat, vocab_size)
        for key in [k for k in state if k.endswith(("q_proj.weight", "k_proj.weight"))]:
            heads = SMALL.num_heads if "q_proj" in key else SMALL.num_kv_heads
            state[key] = np.ascontiguousarray(permute_rotary(state[key], heads))
        return state

    monkeypatch.setattr(hf_keys, "to_hf", wrong)
    with pytest.raises(convert.ParityError):
        runner.run_stage("convert", stage_config(tmp_path), runs=tmp_path / "runs")
    root = tmp_path / "runs" / "unit"
    assert not (root / "convert").exists()  # nothing marked done; the failed report stays in the work directory
    assert not json.loads((root / ".convert.work" / "parity.json").read_text())["passed"]
