"""bench/load.py runs end to end at a tiny scale and prints every figure (the figures
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
