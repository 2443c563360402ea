"""The data stage: near-dedup, missing sources, token-share mixing, decontamination, packing format, paper config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from prepare_runs import cpu_config, distinct_texts, first_gsm8k_test_question, make_runs, run_prepare

from tinymath import manifest, paths, prepare as stage, runner, specials
from tinymath.config import load_config
from tinymath.errors import UserError
from tinymath.packed import PackedSplit, loss_mask
from tinymath.prepare import dedup, pack
from tinymath.prepare.config import DedupConfig
from tinymath.prepare.hub import stream_source


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, shared_data) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("runs")
    make_runs(root, first_gsm8k_test_question(shared_data))
    out = run_prepare(root, cpu_config())
    return out, json.loads((out / "stats.json").read_text())


def packed_document_ids(out: Path) -> set[str]:
    index = json.loads((out / "packed" / "index.json").read_text())
    return {d for shards in index["splits"].values() for s in shards for row in s["documents"] for d in row}


@pytest.mark.parametrize("text", ["The Quick, brown fox: 12 jumps over 3.5 lazy dogs; the end of it all.",
                                  "Café déjà vu: naïve façade, résumé of 2,024 élèves and 7 more words here."])
def test_dedup_signature_matches_datatrove_shingles(text, tmp_path):
    cfg = dedup.minhash_config(DedupConfig())
    ours = dedup.Signature(str(tmp_path), config=cfg, language=dedup.WhitespaceWords())
    reference = dedup.MinhashDedupSignature(str(tmp_path), config=cfg, language=dedup.WhitespaceWords())
    assert np.array_equal(ours.get_shingles(text), reference.get_shingles(text))
    assert ours.get_shingles(text).shape == (len(text.split()) - 4, 1)


def test_prepare_missing_source_is_an_error_naming_it(tmp_path):
    make_runs(tmp_path, gsm_question=None)
    sources = cpu_config().model_dump()["sources"]
    sources["proof_pile"] = sources.pop("math_tables")  # same share, a family the corpus does not have
    with pytest.raises(UserError, match=r"sources\.proof_pile: family 'proof_pile' has no documents"):
        run_prepare(tmp_path, cpu_config(sources=sources))


def test_prepare_mix_achieves_cpu_shares_within_one_percent(prepared):
    _, stats = prepared
    cpu = load_config(paths.CONFIGS / "prepare" / "cpu.yaml", stage.Config)
    assert set(stats["mix"]) == set(cpu.sources)
    for name, source in cpu.sources.items():
        assert stats["mix"][name]["target"] == source.share
        assert abs(stats["mix"][name]["achieved"] - source.share) <= 0.01 * source.share
    assert stats["tokens"]["train"] == sum(m["tokens"] for m in stats["mix"].values())


def test_prepare_removes_near_duplicates_and_contaminated_documents(prepared):
    out, stats = prepared
    assert stats["dedup"]["removed"] == 20
    assert stats["decontamination"]["gsm8k_test"] == 1
    assert stats["decontamination"]["synth_gsm_test"] == 1
    assert stats["decontamination"]["synth_math_test"] == 0
    ids = packed_document_ids(out)
    assert "contaminated-gsm8k" not in ids and "contaminated-synth" not in ids


def test_prepare_is_deterministic(prepared, tmp_path, shared_data):
    out, _ = prepared
    make_runs(tmp_path, first_gsm8k_test_question(shared_data))
    again = run_prepare(tmp_path, cpu_config())
    assert manifest.hash_tree(again) == manifest.hash_tree(out)


def test_packed_split_reads_back_the_document_stream(prepared):
    out, stats = prepared
    split = PackedSplit(out / "packed", "train")
    rows = [split[i] for i in range(len(split))]
    tokens = np.concatenate([r["tokens"][r["segment_ids"] > 0] for r in rows])
    assert len(tokens) == stats["tokens"]["train"] and split.seq_len == 64
    ends = np.flatnonzero(tokens == specials.ENDOFTEXT_ID)
    assert ends[-1] == len(tokens) - 1  # the stream is whole documents, each ending in <|endoftext|>
    docs = sum(len(r) for s in json.loads((out / "packed" / "index.json").read_text())["splits"]["train"]
               for r in s["documents"])
    assert len(ends) <= docs  # a document split across rows is listed in both rows


def test_pack_restarts_segments_and_positions_at_document_boundaries():
    docs = [np.array([10, 11, 12, 0]), np.array([20, 0]), np.array([30, 31, 32, 33, 34, 0]), np.array([40, 0])]
    rows = pack.pack([d.astype(np.int32) for d in docs], seq_len=4)  # width 5
    assert rows["tokens"].tolist() == [[10, 11, 12, 0, 20], [0, 30, 31, 32, 33], [34, 0, 40, 0, specials.PAD_ID]]
    assert rows["segment_ids"].tolist() == [[1, 1, 1, 1, 2], [1, 2, 2, 2, 2], [1, 1, 2, 2, 0]]
    assert rows["positions"].tolist() == [[0, 1, 2, 3, 0], [0, 0, 1, 2, 3], [0, 1, 0, 1, 0]]
    assert not loss_mask(rows["segment_ids"])[2, 1]  # 0 (end of doc 3) -> 40 (doc 4) is not a target
    assert pack.row_documents(np.array([4, 2, 6, 2]), ["a", "b", "c", "d"], 5) == [["a", "b"], ["b", "c"], ["c", "d"]]


def test_paper_config_validates_with_hub_ids_and_fails_fast_offline(monkeypatch, tmp_path):
    cfg = load_config(paths.CONFIGS / "prepare" / "paper.yaml", stage.Config)
    assert cfg.requires.network and cfg.seq_len == 4096
    hub = {s.hub_id for s in cfg.sources.values()}
    assert {"HuggingFaceFW/fineweb-edu", "open-web-math/open-web-math", "EleutherAI/proof-pile-2"} <= hub
    assert stage.needs(cfg) == ["tokenizer"]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="requires.network") as err:
        runner.check_requirements(cfg.requires, paths.CONFIGS / "prepare" / "paper.yaml")
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match=r"sources\.fineweb_edu: cannot stream HuggingFaceFW/fineweb-edu") as err:
        next(stream_source("fineweb_edu", cfg.sources["fineweb_edu"]))
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="unreachable"):
        runner.run_stage("tokenizer", paths.CONFIGS / "tokenizer" / "paper.yaml", runs=tmp_path)


def test_prepare_paper_flow_streams_each_source_to_its_token_budget(tmp_path):
    """The hub path end to end through datatrove's streaming HF reader, on local JSONL files (`data_files`)."""
    make_runs(tmp_path, gsm_question=None)
    cfg = load_config(paths.CONFIGS / "prepare" / "paper.yaml", stage.Config)
    sources = {}
    for name, source in cfg.sources.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"text": t}) + "\n" for t in distinct_texts(2000, seed=len(name))))
        sources[name] = source.model_dump() | {"hub_id": "json", "hub_config": None, "text_field": "text",
                                               "data_files": str(path)}
    paper = stage.Config.model_validate(cfg.model_dump() | {"tokens": 20_000, "seq_len": 64, "sources": sources,
                                                            "validation_fraction": 0.1, "executor": "local",
                                                            "tasks": 1, "workers": 1})
    stats = json.loads((run_prepare(tmp_path, paper) / "stats.json").read_text())
    for name, source in paper.sources.items():
        assert stats["documents"][name] < 2000  # stopped once oversample x share x tokens were streamed
        target = source.share * 20_000  # a few hundred tokens a document: half a document is 2-5% of a target
        assert abs(stats["mix"][name]["tokens"] - target) <= 0.06 * target
    assert "synth_gsm_test" not in stats["decontamination"]
