"""The benchmarks run end to end at a tiny scale and print every figure (the figures
themselves are the benchmark's business, not the test's)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_load_benchmark_prints_every_page(tmp_path):
    out = tmp_path / "load.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "load.py"), "--posts", "400", "--clients", "4",
                           "--requests", "8", "--seconds", "5", "--json", str(out)],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert set(figures["pages"]) == {name for name, _ in __import__("bench.load", fromlist=["PAGES"]).PAGES}
    for name, r in figures["pages"].items():
        assert r["requests"] == 8 and r["errors"] == 0 and 0 < r["p50_ms"] <= r["p95_ms"] <= r["max_ms"], name
        assert name in done.stdout


def test_scale_benchmark_writes_every_figure(tmp_path):
    """bench/scale.py at 300 posts (MiniLM on a 20-post sample): every figure of #7 is a number."""
    out = tmp_path / "results.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "scale.py"), "--posts", "300", "--tag-sample", "20",
                           "--queries", "4", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    for key in ("ingest_posts_per_s", "ingest_vs_raw_sqlite", "tag_posts_per_s", "tag_vs_encoder",
                "aggregate_update_s", "query_p50_ms", "query_p95_ms", "db_bytes_per_post", "peak_rss_mb"):
        assert isinstance(figures[key], (int, float)) and figures[key] > 0, key
        assert key in done.stdout
    assert figures["posts"] == 300 and "CPUs" in figures["machine"]


def test_throughput_benchmark_prints_every_figure():
    """bench/throughput.py on 24 synthetic posts, one round: raw forward, tag, and tag without the encoder."""
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "throughput.py"), "--synthetic", "--posts", "24",
                           "--rounds", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for line in ("raw encoder forward:", "trustwatch tag:", "tag_vs_encoder:", "tag without the encoder:"):
        assert line in done.stdout, line


def test_throughput_benchmark_times_more_worker_counts_and_writes_json(tmp_path):
    """--workers 2,1: figures for 2 workers, tag also timed in one process; --json writes them."""
    out = tmp_path / "t.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "throughput.py"), "--synthetic", "--posts", "24",
                           "--rounds", "1", "--workers", "2,1", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["workers"] == 2 and figures["tag_posts_per_s_by_workers"]["1"] > 0
    assert figures["model_process_cpu_us_per_post"] > 0 and "with 1 worker(s):" in done.stdout
    assert "model process CPU:" in done.stdout
    bad = subprocess.run([sys.executable, str(ROOT / "bench" / "throughput.py"), "--workers", "2,x"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--workers: not a number" in bad.stderr and "Traceback" not in bad.stderr


def test_cpu_scaling_benchmark_reports_each_process_count():
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "cpu_scaling.py"), "--counts", "1,2", "--posts", "40"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "usable" in done.stdout and "  1 processes:" in done.stdout and "  2 processes:" in done.stdout
    bad = subprocess.run([sys.executable, str(ROOT / "bench" / "cpu_scaling.py"), "--counts", "0"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--counts" in bad.stderr and "Traceback" not in bad.stderr
