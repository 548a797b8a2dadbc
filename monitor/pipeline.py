"""The main job: collect -> tag -> aggregate, each step safe to repeat.

Collected items are stored in batches, and a source's state is saved only after all it
fetched is stored: a run killed at any point repeats some work and loses none."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import pickle
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import collectors
from collectors import BadItem, SourceFailed

from . import storage
from . import aggregate as agg
from .config import Config, ModelConfig
from .errors import ConfigError, InputError, LockedError, ModelError
from .privacy import Pseudonymizer, mask_contacts

Log = Callable[[str], None]
BATCH = 500


@dataclass
class RunReport:
    new: int = 0
    updated: int = 0
    tagged: int = 0
    sources: dict[str, dict] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return bool(self.errors)


@contextlib.contextmanager
def run_lock(db_path: Path) -> Iterator[None]:
    """One run per database at a time. The OS drops the lock when its process dies, so a
    killed run never leaves a stale lock behind."""
    lock_path = Path(f"{db_path}.lock")
    try:
        fh = open(lock_path, "a+")
    except OSError as e:
        raise InputError(f"{db_path}: cannot create the lock file {lock_path.name} ({e.strerror})")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise LockedError(f"{db_path}: another trustwatch run holds the lock ({holder})")
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        yield
    finally:
        fh.close()


def _store(db, collector, pseudo: Pseudonymizer, counts: dict, state: dict, progress: bool = False,
           opt_out: frozenset[str] = frozenset(), keep_after: str | None = None) -> None:
    """Pseudonymise, mask and store what a collector fetches, in batches. ``progress``:
    a running count on stderr (terminals only)."""
    batch: list = []

    def flush():
        new, updated = storage.save_posts(db, batch, keep_after)
        counts["new"] += new
        counts["updated"] += updated
        batch.clear()

    if progress:
        import click

        bar = click.progressbar(collector.fetch(state), label=f"collect {collector.name}",
                                file=sys.stderr, show_pos=True)
    else:
        bar = contextlib.nullcontext(collector.fetch(state))
    with bar as items:
        try:
            for raw in items:
                try:
                    post = collector.to_post(raw)
                except BadItem:
                    collector.counts["bad_items"] += 1
                    continue
                if post is None:
                    continue
                if post.community.lower() in opt_out:
                    collector.counts["opted_out"] += 1
                    continue
                batch.append(
                    dataclasses.replace(
                        post,
                        author=pseudo.author(post.author),
                        title=mask_contacts(post.title),
                        text=mask_contacts(post.text),
                    )
                )
                if len(batch) >= BATCH:
                    flush()
        except SourceFailed:
            flush()  # what was read before the damage is kept
            raise
    flush()


def retention_cutoff(cfg: Config) -> str | None:
    return storage.now(minus_days=cfg.retain_days) if cfg.retain_days else None


def polite_client(cfg: Config) -> collectors.PoliteClient:
    """The HTTP client the web sources of one run share (per-host spacing across them)."""
    return collectors.PoliteClient(contact=cfg.collect.contact, min_interval=cfg.collect.min_interval)


def enforce_privacy(cfg: Config, db, log: Log = print) -> None:
    """Opted-out communities leave the database; text past retention is purged."""
    gone = storage.purge_communities(db, cfg.opt_out)
    if gone:
        log(f"privacy: removed {gone} posts of opted-out communities")
    cutoff = retention_cutoff(cfg)
    if cutoff:
        blanked = storage.purge_text_before(db, cutoff)
        if blanked:
            log(f"privacy: purged the text of {blanked} posts older than {cfg.retain_days} days")


def collect(cfg: Config, db, names: list[str] | None = None, log: Log = print, progress: bool = False) -> RunReport:
    """Run the named sources (all by default). One failing source never stops the others."""
    pseudo = Pseudonymizer.from_env(cfg.salt_env, cfg.path)
    chosen = [cfg.source(n) for n in names] if names else cfg.sources
    if not chosen:
        raise ConfigError(f"{cfg.path}: no [[source]] configured")
    report = RunReport()
    # One client for the run; its connections close when the run ends, however it ends.
    with polite_client(cfg) as http:
        for src in chosen:
            state = storage.load_state(db, src.name)
            counts = {"new": 0, "updated": 0}
            collector = None
            try:
                collector = collectors.build(src, http)
                _store(db, collector, pseudo, counts, state, progress, frozenset(cfg.opt_out), retention_cutoff(cfg))
            except SourceFailed as e:
                report.errors[src.name] = str(e)
                log(f"collect {src.name}: FAILED: {e}")
            else:
                storage.save_state(db, src.name, src.type, state)
            extra = collector.counts if collector else {}
            counts.update(extra)
            report.sources[src.name] = counts
            report.new += counts["new"]
            report.updated += counts["updated"]
            details = ", ".join(f"{v} {k}" for k, v in sorted(extra.items()))
            log(f"collect {src.name}: {counts['new']} new, {counts['updated']} updated" + (f" ({details})" if details else ""))
            for note in collector.notes if collector else []:
                log(f"collect {src.name}: note: {note}")
    return report


def recheck(cfg: Config, db, names: list[str] | None = None, log: Log = print) -> RunReport:
    """Fetch stored posts again: remove what authors deleted or moderators removed, from
    every table; update edited text (re-tagged by the next `tag`)."""
    chosen = [cfg.source(n) for n in names] if names else cfg.sources
    report = RunReport()
    with polite_client(cfg) as http:
        for src in chosen:
            counts = {"checked": 0, "removed": 0, "edited": 0}
            report.sources[src.name] = counts
            try:
                collector = collectors.build(src, http)
                if not collector.can_recheck:
                    log(f"recheck {src.name}: {src.type} sources cannot be re-fetched; skipped")
                    continue
                for refs in storage.stored_refs(db, src.name):
                    gone, texts = [], {}
                    counts["checked"] += len(refs)
                    for post_id, text in collector.recheck(refs):
                        if text is None:
                            gone.append(post_id)
                        else:
                            texts[post_id] = mask_contacts(text)
                    counts["removed"] += storage.delete_posts(db, gone)
                    counts["edited"] += storage.update_texts(db, texts)
            except SourceFailed as e:
                report.errors[src.name] = str(e)
                log(f"recheck {src.name}: FAILED: {e}")
            log(f"recheck {src.name}: {counts['checked']} checked, {counts['removed']} removed, {counts['edited']} edited")
    return report


def load_tagger(cfg: Config):
    return build_tagger(cfg.model, cfg.watch)


def build_tagger(model: ModelConfig, entities):
    """The tagger a [model] table asks for, over these entities; a model that cannot be
    loaded is a one-line ModelError."""
    import models

    try:
        return models.load_tagger(
            entities,
            encoder=model.encoder,
            heads=model.heads,
            sentiment=model.sentiment,
            themes=model.themes,
            device=model.device,
            batch_size=model.batch_size,
            int8=model.int8,
        )
    except models.ModelLoadError as e:
        raise ModelError(str(e))


class StageClock:
    """Seconds spent per stage of tagging, for benchmarks: where the process that holds
    the model waits, and how busy the writer thread is. Adding to it costs a clock read."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def add(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - since
        return now

    def __str__(self) -> str:
        return ", ".join(f"{k} {v:.2f}s" for k, v in self.seconds.items())


def tag(cfg: Config, db, log: Log = print, tagger=None, batch: int = 256, progress: bool = False,
        workers: int | None = None, clock: StageClock | None = None) -> int:
    """Tag every post not yet tagged by the current model for its current text and
    watchlist. Returns how many posts were tagged. ``progress``: a progress bar on
    stderr (for terminals; cron gets only the summary line). ``workers`` (default: the
    config's [model] workers): processes for the work around the model. ``clock``:
    collects the seconds spent per stage (bench/throughput.py prints them)."""
    clock = clock or StageClock()
    t = time.perf_counter()
    tagger = tagger or load_tagger(cfg)
    wl = storage.watchlist_hash(cfg.watch)
    kept = restamp_unchanged(db, tagger, wl)  # before sync_entities drops removed entities' mentions
    storage.sync_entities(db, cfg.watch)
    storage.register_model(db, tagger.describe())
    if kept:
        log(f"tag: watchlist or mention rules changed; {kept} posts keep their tags (same mentions found)")
    clock.add("prepare", t)
    workers = tag_workers(cfg.model) if workers is None else workers
    done = 0
    bar = None
    if progress:
        import click

        bar = click.progressbar(length=storage.count_to_tag(db, tagger.model_id, wl), label="tagging",
                                file=sys.stderr, show_pos=True)
    batches = storage.posts_to_tag(db, tagger.model_id, wl, batch=batch)
    if workers > 1:
        tagged = _tag_in_workers(tagger, batches, workers, wl, clock)
    else:
        tagged = ((rows, storage.tag_rows(tagger.model_id, wl, rows, tagger.tag(
            [(r["id"], r["title"], r["text"]) for r in rows]))) for rows in batches)
    # closing: an error while saving shuts the worker pool down at once
    with bar if bar is not None else contextlib.nullcontext(), contextlib.closing(tagged), \
            _Writer(db, tagger.model_id, threaded=workers > 1, clock=clock) as writer:
        for rows, tag_rows in tagged:
            t = time.perf_counter()
            writer.write(tag_rows)
            clock.add("hand rows to the writer", t)
            done += len(rows)
            if bar is not None:
                bar.update(len(rows))
    log(f"tag: {done} posts tagged with {tagger.model_id}")
    return done


class _Writer:
    """Stores batches of tag rows. ``threaded`` (the worker path, as on a GPU): from a
    thread with its own connection, a few batches behind, so the process that feeds the
    model never waits for SQLite or the disk. An error while writing is raised at the next
    batch or at the end; the batches queued before it are still written."""

    def __init__(self, db, model: str, threaded: bool = False, clock: StageClock | None = None):
        import queue
        import threading

        self.db, self.model, self.error = db, model, None
        self.clock = clock or StageClock()
        self.conn = storage.writer_connection(db) if threaded else None
        if self.conn is not None:
            self.queue: queue.Queue = queue.Queue(maxsize=8)
            self.thread = threading.Thread(target=self._run, name="trustwatch-tag-writer", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        try:
            while (rows := self.queue.get()) is not None:
                if self.error is None:
                    t = time.perf_counter()
                    try:
                        storage.write_tags(self.conn, self.model, rows)
                    except BaseException as e:  # raised in the main thread
                        self.error = e
                    self.clock.add("writer thread busy", t)
        finally:
            self.conn.close()

    def write(self, rows: storage.TagRows) -> None:
        if self.conn is None:
            storage.write_tags(self.db, self.model, rows)
            return
        if self.error is not None:
            raise self.error
        self.queue.put(rows)

    def __enter__(self) -> "_Writer":
        return self

    def __exit__(self, *exc) -> None:
        if self.conn is not None:
            self.queue.put(None)
            self.thread.join()
            if self.error is not None and exc[0] is None:
                raise self.error


def restamp_unchanged(db, tagger, wl: str, page: int = 2000) -> int:
    """After a watchlist change, posts whose text is unchanged and in which the new
    watchlist finds exactly the mentions stored (same entities, kinds and places) would be
    tagged exactly as before: they only take the new watchlist's stamp. Only posts where
    mentions appear, vanish or move are re-tagged, so adding a site to a watchlist of a
    million posts costs a pass of the matcher, not hours of the model. Returns how many
    kept their tags."""
    from models.tagger import full_text

    model = tagger.model_id
    # Only tags made under the watchlist that the entities table and the stored mentions
    # still reflect can be compared: a sync since (an interrupted run, another model's
    # run) may have dropped mentions or changed kinds that those tags were worked out with.
    synced = storage.synced_watchlist(db)
    if synced is None or synced == wl:
        return 0
    kinds = {e.id: e.kind for e in tagger.matcher.entities.values()}
    old_kinds = {r[0]: r[1] for r in db.execute("select id, kind from entities")}
    sql = """select p.rowid as rid, p.id, p.title, p.text from posts p
             join post_tags t on t.post_id = p.id and t.model = :model
             where t.content_hash = p.content_hash and t.watchlist_hash = :synced and p.rowid > :last
               and not (p.title = '' and p.text = '')
             order by p.rowid limit :page"""
    last, kept = 0, 0
    while True:
        rows = db.execute(sql, {"model": model, "synced": synced, "last": last, "page": page}).fetchall()
        if not rows:
            return kept
        last = rows[-1][0]
        ids = [r[1] for r in rows]
        stored: dict[str, set] = {i: set() for i in ids}
        marks = ",".join("?" * len(ids))
        for post_id, entity, start, end in db.execute(
            f'select post_id, entity_id, start, "end" from mentions where model = ? and post_id in ({marks})',
            [model, *ids],
        ):
            stored[post_id].add((entity, old_kinds.get(entity), start, end))
        same = [
            post_id for _, post_id, title, text in rows
            if {(m.entity, kinds[m.entity], m.start, m.end) for m in tagger.matcher.find(full_text(title, text))}
            == stored[post_id]
        ]
        if same:
            with db.atomic():
                db.execute(f"update post_tags set watchlist_hash = ? where model = ? and post_id in "
                           f"({','.join('?' * len(same))})", [wl, model, *same])
            kept += len(same)


def tag_workers(model: ModelConfig) -> int:
    """[model] workers, or where it is 0 (auto): one process on a CPU, where the model's
    forward pass needs every core; on a GPU, a worker per spare usable core (up to 8),
    since one Python process cannot prepare posts as fast as the GPU encodes them. (On
    the H200 machine measured, 8 workers tagged faster than 12 or 15: bench/RESULTS.md.)"""
    if model.workers:
        return model.workers
    if model.device.startswith("cuda"):
        return max(1, min(8, usable_cpus() - 1))
    return 1


def usable_cpus(cgroup_root: Path = Path("/sys/fs/cgroup"), proc_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    """The CPUs this process may use: its affinity mask, capped by a cgroup CPU quota
    (containers and VMs often show every core of the host but allow a few)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = cgroup_cpu_quota(cgroup_root, proc_cgroup)
    return max(1, min(n, int(quota))) if quota else n


def cgroup_cpu_quota(cgroup_root: Path = Path("/sys/fs/cgroup"),
                     proc_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """CPUs' worth of time the cgroup of this process may use: the tightest cgroup v2
    cpu.max or v1 cfs quota on the way from its cgroup up to the root, or None where
    there is no limit or none can be read."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    v2 = next((line.split(":", 2)[2] for line in lines if line.startswith("0::")), "/")
    v1 = next((line.split(":", 2)[2] for line in lines
               if len(line.split(":", 2)) == 3 and "cpu" in line.split(":", 2)[1].split(",")), "/")

    def up(base: Path, rel: str) -> list[Path]:
        parts = [x for x in rel.split("/") if x]
        return [base.joinpath(*parts[:k]) for k in range(len(parts), -1, -1)]

    quotas = []
    for folder in up(cgroup_root, v2):
        try:
            quota, period = (folder / "cpu.max").read_text().split()[:2]
            if quota != "max":
                quotas.append(int(quota) / int(period))
        except (OSError, ValueError, ZeroDivisionError):
            continue
    for folder in up(cgroup_root / "cpu", v1):
        try:
            quota = int((folder / "cpu.cfs_quota_us").read_text().split()[0])
            period = int((folder / "cpu.cfs_period_us").read_text().split()[0])
            if quota > 0:
                quotas.append(quota / period)
        except (OSError, IndexError, ValueError, ZeroDivisionError):
            continue
    return min(quotas) if quotas else None


_ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "TOKENIZERS_PARALLELISM": "false"}
_PLANNER = None  # set in each worker process
_TOKENIZE = None
_HEADS = None


def _init_worker(state_file: str) -> None:
    """Load the matcher, tokenizer and heads that the main process saved for the workers."""
    global _PLANNER, _TOKENIZE, _HEADS
    with open(state_file, "rb") as f:
        _PLANNER, _TOKENIZE, _HEADS = pickle.load(f)


def _worker_state(tagger, tokenize) -> str:
    """Save what every worker needs to a private temporary file, whose name is all that
    each worker's start sends. Sent as arguments, those few MB went down each new
    process's pipe, and starting a process waited until the child had started Python
    and read them: workers started one after another, about 0.4 s each (3.5 s for 8 on
    the H200 machine). Now they start side by side."""
    import tempfile

    fd, path = tempfile.mkstemp(prefix="trustwatch-tag-", suffix=".pickle")
    try:
        with os.fdopen(fd, "wb") as f:
            # The planner carries the bag-of-words model; the heads' copy of its arrays
            # (several MB) would be dead weight in every worker.
            heads = dataclasses.replace(tagger.heads, lexical={})
            pickle.dump((tagger.planner, tokenize, heads), f, pickle.HIGHEST_PROTOCOL)
    except BaseException:
        os.unlink(path)
        raise
    return path


def _plan(items):
    """(texts to score, or those texts tokenized; plans) for one batch of posts. The plans
    only pass through the main process on their way to _finish, so they travel as one
    bytes object: unpickling thousands of small objects there would hold its GIL."""
    texts, plans = _PLANNER.plan(items)
    return (_TOKENIZE(texts) if _TOKENIZE is not None else texts), pickle.dumps(plans, pickle.HIGHEST_PROTOCOL)


def _finish(plans: bytes, scores, model: str, wl: str, rows: list[dict]):
    """The rows to store for one batch, from its plans and either the model's scores
    (sentiment, themes) or the encoder's embeddings (the heads run here)."""
    sent, themes = scores if isinstance(scores, tuple) else (_HEADS.sentiment(scores), _HEADS.themes(scores))
    return storage.tag_rows(model, wl, rows, _PLANNER.finish(pickle.loads(plans), sent, themes))


def _tag_in_workers(tagger, batches, workers: int, wl: str,
                    clock: StageClock | None = None) -> Iterator[tuple[list[dict], storage.TagRows]]:
    """(rows, tag rows to store) in order, as tagging in this process would give them,
    with everything but the model's forward pass in worker processes: chunks, mentions
    and contexts, and tokenizing, a few batches ahead; verdicts and the rows to store
    behind. On a GPU the forward pass of one batch is queued before the previous one's
    embeddings are read back, so the device never waits for this process."""
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    tokenize = tagger.tokenizer()  # None: a hub model scores texts its own way, here
    depth = 2 * workers
    # Workers start (on demand, from the first submits) with one thread each for numpy's
    # BLAS and the tokenizer: with a worker per core, per-worker thread pools fight over
    # the cores (a first H200 run: 15 workers tagged slower than 8).
    saved_env = {k: os.environ.get(k) for k in _ONE_THREAD}
    os.environ.update(_ONE_THREAD)
    pool = None
    planned: deque = deque()  # (rows, future of (texts or batches, plans))
    scoring = None  # (rows, plans, pending forward pass or scores)
    finishing: deque = deque()  # (rows, future of tag rows)
    rest = iter(batches)
    more = True
    clock = clock or StageClock()
    first = True
    state = None
    try:
        state = _worker_state(tagger, tokenize)
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(state,))
        while True:
            while more and len(planned) < depth:
                t = time.perf_counter()
                rows = next(rest, None)
                t = clock.add("read posts", t)
                if rows is None:
                    more = False
                else:
                    planned.append((rows, pool.submit(_plan, [(r["id"], r["title"], r["text"]) for r in rows])))
                    clock.add("send posts to workers", t)
            if first and planned and tokenize is not None:
                # While the workers start on the first batches: the encoder's first pass at
                # each batch shape (on a GPU; nothing elsewhere).
                t = time.perf_counter()
                tagger.warm_up()
                clock.add("warm up the model", t)
            current = None
            if planned:
                rows, future = planned.popleft()
                t = time.perf_counter()
                prepared, plans = future.result()
                # The first wait includes starting the workers.
                t = clock.add("start workers, first plans" if first else "wait for plans", t)
                first = False
                current = (rows, plans, tagger.start(prepared) if tokenize is not None else tagger.score(prepared))
                clock.add("queue forward passes", t)
            if scoring is not None:
                rows, plans, pending = scoring
                t = time.perf_counter()
                scores = pending.result() if tokenize is not None else pending  # embeddings, or (sent, themes)
                t = clock.add("wait for the model", t)
                slim = [{"id": r["id"], "content_hash": r["content_hash"]} for r in rows]
                finishing.append((rows, pool.submit(_finish, plans, scores, tagger.model_id, wl, slim)))
                clock.add("send scores to workers", t)
            scoring = current
            while finishing and (finishing[0][1].done() or not (planned or scoring) or len(finishing) > depth):
                rows, future = finishing.popleft()
                t = time.perf_counter()
                done = future.result()
                clock.add("wait for tag rows", t)
                yield rows, done
            if not (more or planned or scoring or finishing):
                return
    finally:
        try:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        finally:
            if state is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(state)
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def current_model(db) -> str | None:
    row = db.execute("select id from models where current = 1").fetchone()
    return row[0] if row else None


def aggregate(db, model: str | None = None, log: Log = print, rules=None) -> int:
    """Bring the aggregates and alerts of one model (the current one by default) up to
    date, recomputing only the weeks whose mentions changed."""
    model = model or current_model(db)
    if model is None:
        log("aggregate: nothing tagged yet")
        return 0
    u = agg.update(db, model, rules)
    if u.weeks:
        log(f"aggregate: {u.weeks} weeks updated ({u.rows} entity-weeks), {u.alerts} alerts, for {model}")
    else:
        log(f"aggregate: up to date for {model}")
    return u.rows


STEPS = ("collect", "tag", "aggregate")


def run(cfg: Config, names: list[str] | None = None, log: Log = print, tagger=None,
        steps: tuple[str, ...] = STEPS, progress: bool = False) -> RunReport:
    """The given steps (collect + tag + aggregate by default) under the run lock,
    recorded in ``runs``."""
    with run_lock(cfg.database):
        db = storage.open_db(cfg.database)
        storage.sync_sources(db, cfg.sources)
        run_id = storage.start_run(db, "+".join(steps))
        status = "failed"
        report = RunReport()
        try:
            enforce_privacy(cfg, db, log=log)
            if "recheck" in steps:
                report = recheck(cfg, db, names, log=log)
            if "collect" in steps:
                report = collect(cfg, db, names, log=log, progress=progress)
            if "tag" in steps:
                tagger = tagger or load_tagger(cfg)
                report.tagged = tag(cfg, db, log=log, tagger=tagger, progress=progress)
            if "aggregate" in steps:
                aggregate(db, tagger.model_id if tagger else None, log=log, rules=cfg.alerts)
            status = "partial" if report.failed else "ok"
        finally:
            storage.finish_run(
                db, run_id, status=status, posts_new=report.new, posts_updated=report.updated,
                posts_tagged=report.tagged, sources=report.sources, errors=report.errors,
            )
            db.close()
    return report
