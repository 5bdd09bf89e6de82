"""``manage.py bench_ml``: decode, scoring and retrain speed of the ml code the worker runs, and the
product's own retrain (``product_retrain_s``): the worker's run on the digits demo, from the label
that asks for it to the version published."""

from __future__ import annotations

import io
import json
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from django.core.management.base import BaseCommand, CommandParser
from PIL import Image

from ml.data import cache_append, decode_image
from ml.embeddings import embeddings_ensure, embeddings_read, load_backbone
from ml.evaluation.datasets import load_digits_arrays
from ml.loop import fit_and_score, fit_and_score_features
from ml.models.predict import predict_proba, predict_proba_features
from ml.scoring import bald, entropy
from ml.selection import choose_batch
from ml.training import train, train_head


def _photos(n: int, rng: np.random.Generator) -> list[bytes]:
    """n distinct 320x240 JPEG files (smooth colour noise), as an upload would bring them."""
    out = []
    for _ in range(n):
        small = rng.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(small).resize((320, 240), Image.Resampling.BICUBIC).save(buffer, format="JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def _pool(n: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n (size, size, 3) uint8 digits: scikit-learn's, repeated with random shifts of up to 2 pixels."""
    x, y, _ = load_digits_arrays(size)
    idx = rng.integers(0, len(x), size=n)
    images = x[idx].copy()
    for i, (dy, dx) in enumerate(rng.integers(-2, 3, size=(n, 2))):
        images[i] = np.roll(images[i], (int(dy), int(dx)), axis=(0, 1))
    return images, y[idx]


T = TypeVar("T")


def _timed(fn: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def _best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    """The shortest of ``repeats`` timings of ``fn``: scoring figures without one-off stalls."""
    return min(_timed(fn)[1] for _ in range(repeats))


class Command(BaseCommand):
    help = "Measure decode, scoring (entropy, BALD with 20 samples) and retrain+rescore speed per model family."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pool", type=int, default=10000)
        parser.add_argument("--labels", type=int, default=200)
        parser.add_argument("--input-size", type=int, default=32)
        parser.add_argument("--decode", type=int, default=500, help="JPEG files to decode for decode speed")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--json", type=Path, default=None)
        parser.add_argument(
            "--detector",
            action="store_true",
            help="also (or with --only-detector, only) time the box projects' detector on generated scenes",
        )
        parser.add_argument("--only-detector", action="store_true")
        parser.add_argument("--detector-pool", type=int, default=2000)
        parser.add_argument("--detector-labels", type=int, default=200)
        parser.add_argument("--detector-input", type=int, default=256)
        parser.add_argument(
            "--product-labels",
            default="100,300",
            help="label counts at which the product's retrain of the digits demo is timed (empty: skip)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["only_detector"]:
            only = {"detector": self._detector(options, self.stdout.write)}
            self.stdout.write(json.dumps(only))
            if options["json"]:
                options["json"].write_text(json.dumps(only, indent=2) + "\n")
            return
        rng = np.random.default_rng(options["seed"])
        size, n_labels = options["input_size"], options["labels"]
        log = self.stdout.write
        with tempfile.TemporaryDirectory(prefix="bench-ml-") as tmp:
            cache = Path(tmp) / "images.u8"
            files = _photos(options["decode"], rng)
            _, seconds = _timed(
                lambda: cache_append(cache, np.stack([decode_image(io.BytesIO(f), size) for f in files]))
            )
            decode_rate = len(files) / seconds
            log(f"decode: {decode_rate:.0f} images/s ({len(files)} 320x240 JPEGs into the {size}px cache)")

            images, labels = _pool(options["pool"] + n_labels, size, rng)
            cache = Path(tmp) / "pool.u8"
            cache_append(cache, images)
            train_x, train_y, pool_x = images[:n_labels], labels[:n_labels], images[n_labels:]
            result: dict = {"score_images_per_s": {}, "retrain_rescore_s": {}}

            # cnn: scoring runs the network on images; BALD runs the head 20 times on features computed once.
            model, _ = train(train_x, train_y, 10, seed=0)
            t_ent = _best_of(lambda: entropy(predict_proba(model, pool_x)))
            t_bald = _best_of(lambda: bald(predict_proba(model, pool_x, mc_samples=20)))
            result["score_images_per_s"]["cnn"] = {"entropy": len(pool_x) / t_ent, "bald": len(pool_x) / t_bald}
            _, t_cnn = _timed(
                lambda: choose_batch(
                    fit_and_score(train_x, train_y, pool_x, 10, strategy="entropy").scores, 10, selection="topk"
                )
            )
            result["retrain_rescore_s"]["cnn"] = t_cnn
            log(
                f"cnn: entropy {len(pool_x) / t_ent:.0f}/s, bald {len(pool_x) / t_bald:.0f}/s, "
                f"retrain+rescore {t_cnn:.1f} s"
            )

            # pretrained: embeddings once (cached), then only the head trains and scores.
            backbone = load_backbone("pretrained")
            emb_path, t_embed = _timed(lambda: embeddings_ensure(cache, size, backbone))
            embed_rate = len(images) / t_embed
            emb = embeddings_read(emb_path, np.arange(len(images)), backbone.dim)
            train_f, pool_f = emb[:n_labels], emb[n_labels:]
            head, _ = train_head(train_f, train_y, 10, reference=emb)
            t_ent = _best_of(lambda: entropy(predict_proba_features(head, pool_f)))
            t_bald = _best_of(lambda: bald(predict_proba_features(head, pool_f, mc_samples=20)))
            result["score_images_per_s"]["pretrained"] = {"entropy": len(pool_f) / t_ent, "bald": len(pool_f) / t_bald}

            def retrain_rescore() -> np.ndarray:
                fresh = embeddings_read(emb_path, np.arange(len(images)), backbone.dim)  # as the task reads them
                r = fit_and_score_features(fresh[:n_labels], train_y, fresh[n_labels:], 10, strategy="bald")
                return choose_batch(r.scores, 10, embeddings=fresh[n_labels:], selection="diverse")

            _, t_pre = _timed(retrain_rescore)
            result["retrain_rescore_s"]["pretrained"] = t_pre
            log(
                f"pretrained: embed {embed_rate:.0f} images/s once; head entropy {len(pool_f) / t_ent:.0f}/s, "
                f"bald {len(pool_f) / t_bald:.0f}/s; retrain+rescore (bald, diverse batch) {t_pre:.1f} s"
            )
        product = self._product_retrain([int(n) for n in options["product_labels"].split(",") if n.strip()], log)
        report = {
            "decode_images_per_s": round(decode_rate, 1),
            "score_images_per_s": {
                fam: {k: round(v, 1) for k, v in d.items()} for fam, d in result["score_images_per_s"].items()
            },
            "retrain_rescore_s": {fam: round(v, 2) for fam, v in result["retrain_rescore_s"].items()},
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "embed_images_per_s": {"pretrained": round(embed_rate, 1)},
            "pool": options["pool"],
            "labels": n_labels,
            "product_retrain_s": {"cnn": {str(n): round(t, 2) for n, (t, _) in product.items()}},
            "product_retrain_metrics": {"cnn": {str(n): m for n, (_, m) in product.items()}},
        }
        if options["detector"]:
            report["detector"] = self._detector(options, log)
        for fam, d in report["score_images_per_s"].items():
            log(f"{fam}: bald/entropy time ratio {d['entropy'] / d['bald']:.2f}")
        log(json.dumps(report))
        if options["json"]:
            options["json"].write_text(json.dumps(report, indent=2) + "\n")

    def _detector(self, options: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
        """The box projects' detector on generated scenes (``ml.evaluation.scenes``, 128 px, up to 6
        objects): the backbone maps' rate (computed once per image), one round as the worker runs it
        (estimate on held-out labeled images, the served head, the pool's boxes, calibration, entropy
        scores) for ``--detector-labels`` labeled and ``--detector-pool`` pool images, BALD's scoring
        rate, and the served head's mAP on the pool itself (images it never saw, by pycocotools)."""
        from ml.detection.centernet import detect, detect_samples, extract_features
        from ml.detection.evaluation import coco_map
        from ml.detection.loop import detector_round
        from ml.detection.scoring import mc_disagreement
        from ml.evaluation.scenes import draw_scene
        from ml.mobilenet import load_mobilenet_v2

        n_labels, n_pool, side = options["detector_labels"], options["detector_pool"], options["detector_input"]
        rng = np.random.default_rng(options["seed"])
        scenes = [draw_scene(128, rng) for _ in range(n_labels + n_pool)]
        backbone = load_mobilenet_v2()
        features, t_maps = _timed(lambda: extract_features(backbone, [s.pixels for s in scenes], input_size=side))
        labeled, pool = features.take(np.arange(n_labels)), features.take(np.arange(n_labels, len(scenes)))
        result, t_round = _timed(
            lambda: detector_round(
                labeled,
                [s.boxes for s in scenes[:n_labels]],
                [s.labels for s in scenes[:n_labels]],
                pool,
                6,
                input_size=side,
                strategy="entropy",
                seed=options["seed"],
            )
        )
        t_detect = _best_of(lambda: detect(result.head, pool), repeats=1)
        t_bald = _best_of(lambda: mc_disagreement(detect_samples(result.head, pool, passes=8)), repeats=1)
        truth = scenes[n_labels:]
        on_pool = coco_map(
            [s.boxes for s in truth],
            [s.labels for s in truth],
            result.pool,
            n_classes=6,
            sizes=[(128, 128)] * len(truth),
        )
        figures: dict[str, Any] = {
            "labels": n_labels,
            "pool": n_pool,
            "input_size": side,
            "maps_images_per_s": round(len(scenes) / t_maps, 1),
            "retrain_rescore_s": round(t_round, 1),
            "detect_images_per_s": round(n_pool / t_detect, 1),
            "bald_images_per_s": round(n_pool / t_bald, 1),
            "held_out": {k: result.metrics[k] for k in ("val_map50", "val_map", "val_n")},
            "pool_map50": round(on_pool["map50"], 4),
            "pool_map": round(on_pool["map"], 4),
        }
        log(
            f"detector: maps {figures['maps_images_per_s']} images/s once; retrain+rescore {t_round:.1f} s "
            f"({n_labels} labeled, {n_pool} pool); detect {figures['detect_images_per_s']}/s, BALD (8 passes) "
            f"{figures['bald_images_per_s']}/s; mAP@0.5 {figures['pool_map50']:.3f} on the {n_pool} unseen pool "
            f"images, {result.metrics['val_map50']} on {result.metrics['val_n']} held-out labeled ones"
        )
        return figures

    def _product_retrain(self, label_counts: list[int], log: Callable[[str], None]) -> dict[int, tuple[float, dict]]:
        """Seconds of the worker's retrain (train, calibrate, score, select, save, publish) of a fresh
        digits demo project at each label count. The labels follow the queue, with a retrain 10
        labels before each count, so the timed run starts from a previous version, as in use."""
        from django.contrib.auth import get_user_model

        from annotator import benchdata

        if not label_counts:
            return {}
        user, _ = get_user_model().objects.get_or_create(username="bench-ml")
        out: dict[int, tuple[float, dict]] = {}
        with tempfile.TemporaryDirectory(prefix="bench-ml-digits-") as tmp:
            project, truth = benchdata.digits_project_create(name="bench-ml digits", user=user, folder=Path(tmp))
            try:
                labeled = 0
                for n in sorted(label_counts):
                    benchdata.label_from_queue(project=project, user=user, truth=truth, n=n - 10 - labeled)
                    benchdata.product_retrain(project=project)
                    benchdata.label_from_queue(project=project, user=user, truth=truth, n=10)
                    labeled = n
                    seconds, metrics = benchdata.product_retrain(project=project)
                    out[n] = (seconds, metrics)
                    log(
                        f"product retrain (cnn, digits demo, {n} labels): {seconds:.1f} s "
                        f"(training {metrics['train_seconds']:.1f} s, accuracy estimate {metrics['val_accuracy']:.3f})"
                    )
            finally:
                benchdata.labeled_project_delete(project)
                user.delete()
        return out
