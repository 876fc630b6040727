"""``offcurate rollout``: sample k responses per question from a causal LM, resumable question by question.

    offcurate rollout -i data/voted -o data/rollouts --model Qwen/Qwen2.5-1.5B-Instruct -k 8
    offcurate rollout ... --backend vllm --tensor-parallel-size 2 --data-parallel-size 4   # 8 GPUs
    offcurate rollout ... --shard-index 3 --num-shards 16 -o data/rollouts/slice-03        # node 3 of 16
    offcurate stats -i data/voted -o data/stats --base-rollouts data/rollouts     # the blog's Figure 2

The question is the user turn of the model's chat template (as in training). Before anything is created,
every option, the backend, the device, the model's tokenizer (and a server's answer) are checked
(``plan``), so a mistake leaves no hidden folder behind. Finished questions are written as they complete
into a hidden ``.OUT.partial`` folder next to the output (``parts``); ``--resume`` skips them, and refuses
a record that changed (model identity, sampling options, backend, device kind, dtype, numerics). When
every question is done, the parts are merged by question id into ``OUT/train-*.parquet`` (question_id,
question, sample_idx, response, finish_reason, response_tokens), atomically.

Each question's samples are seeded by (seed, question id) alone, so one run, K slices, N engines and a
resumed run draw the same samples (bit for bit with the transformers backend on the same hardware).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import polars as pl

from ..curate.io.errors import InputError, OffcurateError
from ..curate.io.output import output_lock, write_errors
from ..curate.io.report import StageReport, console, progress
from ..curate.io.shards import check_output
from ..curate.io.spill import question_hash
from ..train.extra import require_train_extra
from .engines import EngineSpec, deal, load_generator, run_engine, run_engines, term_as_exit
from .generate import Generation, Job, question_seed
from .parts import RECORD, Parts, check_same_record, finished_counts, run_token
from .plan import Plan, model_identity, numerics, plan_engines
from .questions import load_questions


def run_rollout(
    input_dir: Path,
    output: Path,
    generation: Generation,
    select: str = "ok",
    limit: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> StageReport:
    """``offcurate rollout``: the selected questions of ``input_dir`` (see ``rollout_questions``)."""
    _check_output(Path(output), resume, overwrite, (input_dir,))
    require_train_extra("sampling a model (rollout, eval --model)")
    plan = plan_engines(generation)
    questions = load_questions(input_dir, select, limit)
    return rollout_questions(questions, output, generation, resume=resume, overwrite=overwrite, plan=plan)


def rollout_questions(
    questions: pl.DataFrame,
    output: Path,
    generation: Generation,
    resume: bool = False,
    overwrite: bool = False,
    plan: Plan | None = None,
) -> StageReport:
    """k samples for each distinct question of ``questions`` (columns question_id, question) in this
    run's slice into ``output``; ``eval --model`` calls this with the benchmarks' problems."""
    require_train_extra("sampling a model (rollout, eval --model)")
    output = Path(output)
    _check_output(output, resume, overwrite)
    plan = plan or plan_engines(generation)
    output.parent.mkdir(parents=True, exist_ok=True)
    with write_errors(output), output_lock(output):  # one writer of the output and its .partial at a time
        return _sample(questions, output, generation, plan, resume, overwrite)


def _check_output(output: Path, resume: bool, overwrite: bool, inputs=()) -> None:
    """The output's usual checks; a finished run resumed is checked against its record later instead."""
    finished = resume and (output / RECORD).is_file()
    check_output(output, overwrite or finished, inputs)


def slice_questions(questions: pl.DataFrame, shard_index: int, num_shards: int) -> pl.DataFrame:
    """Distinct questions sorted by id, those of slice ``shard_index`` of ``num_shards`` (the question-hash
    slicing of ``vote --shard-index``, so slice i of a vote and of a rollout hold the same questions)."""
    questions = (
        questions.select("question_id", "question").unique("question_id", keep="first").sort("question_id")
    )
    if num_shards == 1:
        return questions
    keep = question_hash(pl.col("question_id")) % num_shards == shard_index
    return questions.filter(keep)


def _sample(
    questions: pl.DataFrame, output: Path, g: Generation, plan: Plan, resume: bool, overwrite: bool
) -> StageReport:
    from ..train.model import load_tokenizer
    from ..train.tiny import TINY_MODEL, resolve_model

    report = StageReport("rollout", output=str(output))
    questions = slice_questions(questions, g.shard_index, g.num_shards)
    qids, texts = questions["question_id"].to_list(), questions["question"].to_list()
    tiny = g.model == TINY_MODEL
    if tiny and plan.backend == "openai":
        raise OffcurateError("--backend openai: give the folder or Hub id the server serves, not tiny-random")
    prepared = None if tiny else _prepare(g.model, load_tokenizer(g.model), qids, texts, g)
    server = _connect(g, plan, prepared) if plan.backend == "openai" and prepared and prepared[1] else None
    identity = f"tiny-random (seed {g.seed})" if tiny else model_identity(g.model, g.model)
    sampling = g.sampling
    record = {
        "model": g.model,
        "model_identity": identity,
        "k": sampling.k,
        "max_new_tokens": sampling.max_new_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "seed": g.seed,
        **numerics(g, plan),
        "questions": hashlib.sha256("\n".join(qids).encode()).hexdigest()[:16],
        "shard_index": g.shard_index,
        "num_shards": g.num_shards,
    }
    if resume and not overwrite and (output / RECORD).is_file():
        return _finished(output, record, len(qids), g, report)
    parts = Parts(output, record, resume, overwrite)
    try:
        source = resolve_model(g.model, parts.folder / TINY_MODEL, seed=g.seed) if tiny else g.model
        if prepared is None:
            prepared = _prepare(source, load_tokenizer(source), qids, texts, g)
        encoder, jobs = prepared
        max_model_len = _context(source, jobs, g) if plan.backend == "vllm" else None
        done = parts.done()
        todo = [job for job in jobs if job.question_id not in done]
        spec = EngineSpec(
            source, g, plan, max_model_len, parts.folder, run_token(), encoder.prompt_opens_think
        )
        generated, seconds = _run(spec, todo, len(jobs), encoder.tokenizer, server)
        samples, reasons = parts.finish(output, overwrite, len(jobs))
    except BaseException:
        parts.discard_if_unused()
        raise
    report.counts.update(
        {
            "model": g.model,
            "backend": f"{plan.backend} ({plan.hardware}, {plan.dtype})"
            if plan.backend != "openai"
            else "openai",
            "engines": plan.engines,
            "questions": len(jobs),
            "questions resumed (already sampled)": len(jobs) - len(todo),
            "samples": samples,
            "finished (stop token)": reasons.get("stop", 0),
            "cut at --max-new-tokens": reasons.get("length", 0),
            "generated tokens (this run)": generated,
            "generated tokens/s": generated / seconds if todo and seconds > 0 else 0.0,
        }
    )
    if g.num_shards > 1:
        report.counts["slice"] = f"{g.shard_index} of {g.num_shards}"
    return report.finish()


def _finished(output: Path, record: dict, questions: int, g: Generation, report: StageReport) -> StageReport:
    """``--resume`` of a finished run (``eval --model --resume`` killed while scoring, say): the samples are
    there and were drawn with these options; nothing is sampled again."""
    check_same_record(output / RECORD, record, "the finished run in")
    found, samples, reasons = finished_counts(output)
    if found != questions:
        raise InputError(f"{output}: holds {found} questions, {questions} were to be sampled")
    report.counts.update(
        {
            "model": g.model,
            "status": "already finished: nothing sampled",
            "questions": questions,
            "questions resumed (already sampled)": questions,
            "samples": samples,
            "finished (stop token)": reasons.get("stop", 0),
            "cut at --max-new-tokens": reasons.get("length", 0),
        }
    )
    return report.finish()


def _prepare(source: str, tokenizer, qids: list[str], texts: list[str], g: Generation):
    """The chat encoder and one ``Job`` per question (prompt text, ids, seed)."""
    from ..train.data import ChatEncoder

    encoder = ChatEncoder(tokenizer)
    prompts = [encoder.prompt_text(q) for q in texts]
    ids = tokenizer(prompts, add_special_tokens=False)["input_ids"] if prompts else []
    jobs = [
        Job(qid, text, prompt, list(prompt_ids), question_seed(g.seed, qid))
        for qid, text, prompt, prompt_ids in zip(qids, texts, prompts, ids)
    ]
    return encoder, jobs


def _connect(g: Generation, plan: Plan, prepared):
    """The server's generator, probed with the first question (one-line errors before anything exists)."""
    from .openai_client import OpenAIGenerator

    encoder, jobs = prepared
    server = OpenAIGenerator(g, encoder.prompt_opens_think, encoder.tokenizer)
    server.connect(jobs[0])
    return server


def _context(source: str, jobs: list[Job], g: Generation) -> int:
    """vLLM's ``max_model_len``: fitted to the prompts (``vllm_engine.fitted_max_model_len``)."""
    from ..train.model import load_config
    from .vllm_engine import fitted_max_model_len

    positions = getattr(load_config(source), "max_position_embeddings", None)
    longest = max((len(job.prompt_ids) for job in jobs), default=0)
    context = fitted_max_model_len(longest, g.sampling.max_new_tokens, positions, g.max_model_len)
    too_long = next((job for job in jobs if len(job.prompt_ids) >= context), None)
    if too_long is not None:
        raise InputError(
            f"question {too_long.question_id}: its prompt has {len(too_long.prompt_ids)} tokens, "
            f"the engine's context is {context} (--max-model-len); nothing would be generated"
        )
    if g.max_model_len is None and positions and longest + g.sampling.max_new_tokens > positions:
        console.print(
            f"the model has {positions} positions: samples of the longest prompts stop at that length "
            "(finish_reason length)",
            style="yellow",
        )
    return context


def _run(spec: EngineSpec, todo: list[Job], total: int, tokenizer, server) -> tuple[int, float]:
    """Sample ``todo`` on the planned engines with a progress bar; (generated tokens, seconds of
    generation: the clock starts once every engine has loaded its model)."""
    generated, started = 0, time.perf_counter()
    if not todo:
        return 0, 0.0
    with progress() as bar, term_as_exit():
        task = bar.add_task("rollout: loading the model", total=total, completed=total - len(todo))

        def on_ready() -> None:
            nonlocal started
            started = time.perf_counter()
            bar.update(task, description="rollout: questions")

        def on_question(tokens: int) -> None:
            nonlocal generated
            generated += tokens
            rate = generated / max(time.perf_counter() - started, 1e-9)
            bar.update(task, advance=1, description=f"rollout: {rate:,.0f} tok/s")

        dealt = [jobs for jobs in deal(todo, spec.plan.engines, spec.generation.num_shards) if jobs]
        if len(dealt) == 1:
            generator = server or load_generator(spec, tokenizer)
            on_ready()
            run_engine(spec, dealt[0], on_question, generator)
        else:
            run_engines(spec, dealt, on_question, on_ready)
    return generated, time.perf_counter() - started
