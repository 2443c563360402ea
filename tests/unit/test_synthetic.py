"""The embedded offline datasets: real formats, verified answers, leak-proof splits, determinism."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from tinymath import manifest, paths, runner, synth as synthetic
from tinymath.answer import extract_boxed
from tinymath.config import load_config
from tinymath.errors import UserError
from tinymath.synth import competition, gsm
from tinymath.synth.arith import canonical, check_solution
from tinymath.synth.config import (
    CORPUS_SOURCES,
    MATH_SUBJECTS,
    Config as SynthConfig,
    CorpusConfig,
    GsmConfig,
    MathConfig,
)
from tinymath.synth.corpus import Corpus

SMOKE = paths.CONFIGS / "synth" / "smoke.yaml"
FILES = ("gsm/train.jsonl", "gsm/validation.jsonl", "gsm/test.jsonl", "gsm/test_meta.jsonl", "math/train.jsonl",
         "math/validation.jsonl", "math/test.jsonl", "math/test_meta.jsonl", "corpus/documents.jsonl")
# `a op b = r` in prose or tables; a match with a leading `n op ` belongs to a longer expression and is skipped
OP = r"(?:[-+*/x]|\\times|\\cdot|\\div)"
FACT_RE = re.compile(rf"(\d+ ?{OP} ?)?(?<![\d.])(\d+) ?({OP}) ?(\d+) ?= ?\$?(\d+)(?![\d.])")
TIMES = {"x": "*", "\\times": "*", "\\cdot": "*", "\\div": "/"}


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> Path:
    return runner.run_stage("synth", SMOKE, runs=tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def gsm_cfg() -> GsmConfig:
    return load_config(SMOKE, synthetic.Config).gsm


def test_synth_stage_writes_files_and_manifest(smoke_run):
    record = manifest.read_manifest(smoke_run)
    assert record is not None and record["stage"] == "synth"
    summary = json.loads((smoke_run / "summary.json").read_text())
    for name in FILES:
        assert (smoke_run / name).stat().st_size > 0
        assert record["outputs"][name] == summary["files"][name] == manifest.sha256_file(smoke_run / name)
    assert "summary.json" in record["outputs"]


def test_synth_counts_match_config(smoke_run, gsm_cfg):
    cfg = load_config(SMOKE, synthetic.Config)
    for split in ("train", "validation", "test"):
        assert len(read(smoke_run / f"gsm/{split}.jsonl")) == getattr(cfg.gsm, split)
        assert len(read(smoke_run / f"math/{split}.jsonl")) == getattr(cfg.math, split)
    assert len(read(smoke_run / "corpus/documents.jsonl")) == cfg.corpus.documents
    meta = read(smoke_run / "gsm/test_meta.jsonl")
    assert [m["id"] for m in meta] == list(range(cfg.gsm.test))
    assert sum(m["novel_arithmetic"] for m in meta) == cfg.gsm.novel_test > 0


def test_gsm_answers_reverify(smoke_run):
    for split in ("train", "validation", "test"):
        for row in read(smoke_run / f"gsm/{split}.jsonl"):
            final, calcs = check_solution(row["answer"])
            assert row["answer"].endswith(f"\n#### {final}") and final >= 0 and calcs


def test_gsm_level_is_number_of_steps(smoke_run):
    test = read(smoke_run / "gsm/test.jsonl")
    for row, meta in zip(test, read(smoke_run / "gsm/test_meta.jsonl"), strict=True):
        _, calcs = check_solution(row["answer"])
        assert len(calcs) == meta["level"] and calcs == [c["calc"] for c in meta["calculations"]]


@pytest.mark.parametrize("bad", ["<<48/2=25>>25", "<<48/2=24>>25", "<<48/5=9>>9", "<<48/5=48/5>>48/5"])
def test_check_solution_rejects_wrong_arithmetic(bad):
    with pytest.raises(ValueError):
        check_solution(f"She sold 48/2 = {bad} clips.\n#### {bad.rsplit('>>', 1)[1]}")


def test_check_solution_rejects_wrong_final_line():
    with pytest.raises(ValueError):
        check_solution("She sold 48/2 = <<48/2=24>>24 clips.\n#### 23")


def test_math_answers_are_last_boxed_and_sympy_checked(smoke_run):
    for split in ("train", "validation", "test"):
        for row in read(smoke_run / f"math/{split}.jsonl"):
            assert extract_boxed(row["solution"]) == row["answer"]
            competition.parse_answer(row["answer"])
            assert row["subject"] in MATH_SUBJECTS and row["level"] in range(1, 6)
            assert row["unique_id"].startswith(f"{split}/") and row["unique_id"].endswith(".json")


def test_math_check_rejects_wrong_answer():
    import sympy

    p = competition.draw(random.Random(0), "Number Theory", 2)
    with pytest.raises(AssertionError):
        competition.check(p, competition.parse_answer(p.answer) + 1)
    wrong = competition.MathProblem(p.problem, p.solution, p.answer + "1", p.subject, p.level, p.template, p.key)
    with pytest.raises(AssertionError):
        competition.check(wrong, sympy.Integer(0))


def test_gsm_split_keys_disjoint(gsm_cfg):
    splits, _ = gsm.generate(gsm_cfg, seed=0)
    keys = {s: [p.key for p in ps] for s, ps in splits.items()}
    assert all(len(set(k)) == len(k) for k in keys.values())
    assert not set(keys["test"]) & (set(keys["train"]) | set(keys["validation"]))
    assert not set(keys["validation"]) & set(keys["train"])


def test_math_split_keys_disjoint():
    problems, _, _ = competition.generate(MathConfig(train=300, validation=40, test=60), 0, lambda fact: False)
    keys = {s: {p.key for p in ps} for s, ps in problems.items()}
    assert sum(map(len, keys.values())) == 400
    assert not keys["test"] & (keys["train"] | keys["validation"]) and not keys["validation"] & keys["train"]


def test_test_problems_absent_from_train_and_corpus(smoke_run):
    corpus = "\n".join(d["text"] for d in read(smoke_run / "corpus/documents.jsonl"))
    for kind, field in (("gsm", "question"), ("math", "problem")):
        seen = {r[field] for s in ("train", "validation") for r in read(smoke_run / f"{kind}/{s}.jsonl")}
        for row in read(smoke_run / f"{kind}/test.jsonl"):
            assert row[field] not in seen and row[field] not in corpus


def _facts(text: str) -> set[str]:
    """Every `a op b = r` written in `text`, annotated or in prose, in canonical form."""
    found = {canonical(expr, r) for expr, r, _ in re.findall(r"<<([^<>=]+)=([^<>]+)>>(\S*)", text)}
    for longer, a, op, b, r in FACT_RE.findall(text):
        if not longer:
            found.add(canonical(f"{a}{TIMES.get(op, op)}{b}", r))
    return found


def test_novel_arithmetic_never_in_training_or_corpus(smoke_run):
    trained = set()
    for split in ("train", "validation"):
        for row in read(smoke_run / f"gsm/{split}.jsonl"):
            trained |= _facts(row["answer"])
        for row in read(smoke_run / f"math/{split}.jsonl"):
            trained |= _facts(row["solution"])
    corpus = set().union(*(_facts(d["text"]) for d in read(smoke_run / "corpus/documents.jsonl")))
    novel = [m for m in read(smoke_run / "gsm/test_meta.jsonl") if m["novel_arithmetic"]]
    assert novel
    for m in novel:
        calcs = {c["calc"] for c in m["calculations"]}
        assert not calcs & trained and not calcs & corpus
        assert not m["calcs_seen_in_train"] and not any(c["seen_in_train"] for c in m["calculations"])


def test_gsm_meta_seen_flags_match_training(smoke_run):
    trained = set()
    for row in read(smoke_run / "gsm/train.jsonl"):
        trained |= set(check_solution(row["answer"])[1])
    for m in read(smoke_run / "gsm/test_meta.jsonl"):
        assert [c["seen_in_train"] for c in m["calculations"]] == [c["calc"] in trained for c in m["calculations"]]
        assert m["calcs_seen_in_train"] == all(c["calc"] in trained for c in m["calculations"])


def test_corpus_sources_and_duplicates(smoke_run):
    docs = read(smoke_run / "corpus/documents.jsonl")
    assert {d["source"] for d in docs} == set(CORPUS_SOURCES)
    assert len({d["id"] for d in docs}) == len(docs)
    texts = [d["text"] for d in docs]
    assert 0.7 * len(texts) < len(set(texts)) < len(texts)
    lengths = sorted(len(t) for t in texts)
    assert lengths[0] < 200 and lengths[-1] > 1500


def test_schema_matches_real_gsm8k(smoke_run, shared_data):
    real = (shared_data / "gsm8k" / "test.jsonl").read_text().splitlines()[:100]
    ours = (smoke_run / "gsm" / "test.jsonl").read_text().splitlines()
    final = re.compile(r"\n#### -?[\d,]+\Z")
    for line in real + ours:
        row = json.loads(line)
        assert list(row) == ["question", "answer"] and all(isinstance(v, str) for v in row.values())
        assert final.search(row["answer"]) and line == json.dumps(row)


def test_schema_matches_real_math500(smoke_run, shared_data):
    real = (shared_data / "math" / "test500.jsonl").read_text().splitlines()
    ours = (smoke_run / "math" / "test.jsonl").read_text().splitlines()
    keys = list(json.loads(real[0]))
    for line in real + ours:
        row = json.loads(line)
        assert list(row) == keys and line == json.dumps(row)
        assert isinstance(row["level"], int) and all(isinstance(row[k], str) for k in keys if k != "level")
        assert extract_boxed(row["solution"]) == row["answer"]
    assert {json.loads(line)["subject"] for line in ours} <= {json.loads(line)["subject"] for line in real}


def _ngrams(text: str, n: int = 13) -> set[str]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def test_synthetic_text_shares_no_13gram_with_real_test_sets(smoke_run, shared_data):
    """Templates are not paraphrases of evaluation problems (the prepare stage's decontamination unit)."""
    real = set()
    for path, field in (("gsm8k/test.jsonl", "question"), ("math/test500.jsonl", "problem")):
        for row in read(shared_data / path):
            real |= _ngrams(row[field])
    ours = [r[k] for s in ("train", "validation", "test") for r in read(smoke_run / f"gsm/{s}.jsonl") for k in r]
    ours += [r[k] for s in ("train", "validation", "test") for r in read(smoke_run / f"math/{s}.jsonl")
             for k in ("problem", "solution")]
    ours += [d["text"] for d in read(smoke_run / "corpus/documents.jsonl")]
    assert not [t for t in ours if _ngrams(t) & real]


def test_synth_rerun_byte_identical(smoke_run, tmp_path):
    again = runner.run_stage("synth", SMOKE, runs=tmp_path)
    assert manifest.read_manifest(again)["outputs"] == manifest.read_manifest(smoke_run)["outputs"]


def test_synth_different_seed_differs(smoke_run, tmp_path):
    other = runner.run_stage("synth", SMOKE, overrides=["seed=1"], runs=tmp_path)
    a, b = manifest.read_manifest(smoke_run)["outputs"], manifest.read_manifest(other)["outputs"]
    assert all(a[name] != b[name] for name in FILES)


@pytest.mark.parametrize("override", ["gsm.levels={7: 1.0}", "gsm.novel_test=1000",
                                      "gsm.train=0", "corpus.sources={blogs: 1.0}", "gsm.typo=1"])
def test_synth_config_rejects_bad_values(override):
    with pytest.raises(UserError, match=r"key '(gsm|corpus)") as e:
        load_config(SMOKE, synthetic.Config, [override])
    assert "\n" not in str(e.value)


def test_paper_profile_has_no_synth():
    assert not runner.config_path("synth", "paper").exists() and "synth" not in runner.profile_stages("paper")


def test_corpus_writes_no_held_out_fact():
    """With a large hold-out share, every fact in every document must still pass the hold-out rule."""
    cfg = SynthConfig(gsm=GsmConfig(holdout_fraction=0.4), corpus=CorpusConfig(documents=300))
    corpus = Corpus(cfg, seed=3)
    docs = corpus.generate()
    facts = set().union(*(_facts(d["text"]) for d in docs))
    binary = {f for f in facts if re.fullmatch(r"\d+[-+*/]\d+=\d+", f)}
    assert len(binary) > 100
    assert not [f for f in binary if corpus.gsm_split.held(f)]


def test_math_statement_decides_split():
    """One statement, one split: templates that write the same text at two levels must not split it two ways."""
    cfg = MathConfig(train=1500, validation=50, test=300)
    problems, _, _ = competition.generate(cfg, 0, lambda fact: False)
    statements = {s: {p.problem for p in ps} for s, ps in problems.items()}
    assert not statements["test"] & (statements["train"] | statements["validation"])
    assert not statements["validation"] & statements["train"]
    splitter, rng, seen = competition.splitter_of(cfg, 0), random.Random(1), {}
    for _ in range(3000):
        p = competition.draw(rng, rng.choice(MATH_SUBJECTS), rng.randint(1, 5))
        assert seen.setdefault(p.problem, splitter.split(p.key)) == splitter.split(p.key)


def test_corpus_holds_no_test_problem():
    """Worked examples are drawn only from problems whose statement the split rule sends to training."""
    cfg = SynthConfig(math=MathConfig(train=1500, validation=50, test=300),
                      corpus=CorpusConfig(documents=1500, sources={"worked_examples": 1.0}))
    tests = [p.problem for p in competition.generate(cfg.math, 0, gsm.splitter_of(cfg.gsm, 0).held)[0]["test"]]
    tests += [p.question for p in gsm.generate(cfg.gsm, 0)[0]["test"]]
    corpus = "\n".join(d["text"] for d in Corpus(cfg, 0).generate())
    assert corpus.count("Problem: ") > 200
    assert not [t for t in tests if t in corpus]


FAMILIES = ("math_tables", "math_prose", "edu_english", "worked_examples")


def minhash_removed(texts: list[str], work: Path) -> int:
    """How many of `texts` the prepare stage's MinHash steps (datatrove's, its settings) remove."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import MinhashDedupBuckets, MinhashDedupCluster

    from tinymath.prepare import dedup, steps
    from tinymath.prepare.config import DedupConfig

    corpus = work / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "source": "f", "text": t}) + "\n" for i, t in enumerate(texts)))
    mh = dedup.minhash_config(DedupConfig(normalize_numbers=False))
    sig, buckets, remove = (str(work / d) for d in ("signatures", "buckets", "remove"))
    stages = [([steps.SynthCorpus(str(corpus), {"f": "f"}), dedup.Signature(sig, config=mh,
                                                                          language=dedup.WhitespaceWords())], 1),
              ([MinhashDedupBuckets(sig, buckets, config=mh)], mh.num_buckets),
              ([MinhashDedupCluster(buckets, remove, config=mh)], 1)]
    for i, (pipeline, tasks) in enumerate(stages):
        LocalPipelineExecutor(pipeline, tasks=tasks, workers=1, logging_dir=str(work / f"logs{i}")).run()
    path = work / "remove" / "000000.remove"
    return path.stat().st_size // 4 if path.is_file() else 0  # uint32 document indices


@pytest.fixture(scope="module")
def family_removal(tmp_path_factory) -> dict[str, float]:
    """Share of each family's documents that MinHash dedup (the prepare stage's settings) removes, without reposts."""
    removed = {}
    for family in FAMILIES:
        cfg = SynthConfig(corpus=CorpusConfig(documents=1500, sources={family: 1.0}, duplicate_fraction=0.0,
                                              near_duplicate_fraction=0.0))
        texts = [d["text"] for d in Corpus(cfg, 0).generate()]
        removed[family] = minhash_removed(texts, tmp_path_factory.mktemp(family)) / len(texts)
    return removed


@pytest.mark.parametrize("family", FAMILIES)
def test_corpus_families_are_mostly_distinct(family_removal, family):
    """Each family varies its wording and numbers enough that near-dedup keeps at least 94% of it."""
    assert family_removal[family] < 0.06


def test_corpus_reposts_give_dedup_a_few_percent():
    """With the configured repost fractions, a few percent of documents are verbatim copies, not more."""
    cfg = SynthConfig(corpus=CorpusConfig(documents=3000, duplicate_fraction=0.02, near_duplicate_fraction=0.03))
    texts = [d["text"] for d in Corpus(cfg, 0).generate()]
    copies = 1 - len(set(texts)) / len(texts)
    assert 0.015 < copies < 0.06


def _real_ngrams(shared_data: Path) -> set[str]:
    real = set()
    for path, field in (("gsm8k/test.jsonl", "question"), ("math/test500.jsonl", "problem")):
        for row in read(shared_data / path):
            real |= _ngrams(row[field])
    return real


def test_every_math_template_avoids_real_13grams(shared_data):
    """Every MATH template at every level, drawn many times, shares no 13-word sequence with GSM8K / MATH-500."""
    real, rng = _real_ngrams(shared_data), random.Random(5)
    for subject, templates in competition.TEMPLATES.items():
        for name, template in templates.items():
            for level in range(1, 6):
                for _ in range(60):
                    try:
                        statement, work, *_ = template(rng, level)
                    except ArithmeticError:
                        continue
                    assert not (_ngrams(statement) | _ngrams(work)) & real, (subject, name, level, statement)


def test_every_corpus_generator_avoids_real_13grams(shared_data):
    """Tables, explanations and encyclopedia paragraphs share no 13-word sequence with GSM8K / MATH-500."""
    from tinymath.synth import encyclopedia, prose, tables
    from tinymath.synth.splits import Splitter

    real, rng, facts = _real_ngrams(shared_data), random.Random(6), tables.Facts(Splitter(0, 0.1, 0.1, 0.03))
    makers = [lambda fn=fn: fn(rng, facts) for fn, _ in tables.KINDS.values()]
    makers += [lambda fn=fn: fn(rng, facts) for fn in prose.PROSE.values()]
    makers += [lambda fn=fn: fn(rng) for fn in encyclopedia.PROFILES.values()]
    for make in makers:
        for _ in range(200):
            try:
                text = make()
            except ArithmeticError:  # an explanation whose numbers state a held-out fact is redrawn in use
                continue
            assert not _ngrams(text) & real, text


def test_dev_subset_shares_no_problem_with_training_text_or_the_test_split(smoke_run):
    """The learning curves' dev problems (the head of gsm/validation.jsonl) never appear in any training text:
    not as a GSM/MATH training question, not in the pretraining corpus, not in the test split."""
    from tinymath.posttrain.dev_curve import DevConfig

    dev_cfg = DevConfig()
    dev = [json.loads(line)["question"] for line in (smoke_run / dev_cfg.path).read_text().splitlines()]
    dev = dev[:dev_cfg.rows]
    assert dev

    def texts(rel: str, field: str) -> set[str]:
        return {json.loads(line)[field] for line in (smoke_run / rel).read_text().splitlines()}

    assert not set(dev) & (texts("gsm/train.jsonl", "question") | texts("gsm/test.jsonl", "question"))
    corpus = (smoke_run / "corpus" / "documents.jsonl").read_text()
    assert not [q for q in dev if json.dumps(q)[1:-1] in corpus]
