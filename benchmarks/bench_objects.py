"""Benchmark object_detection, product_detection and content_safety on the 49 s 1080x1920 clip.

Run: ``python benchmarks/bench_objects.py [--seconds 49] [--width 1080 --height 1920] [--device cpu]``.
Frames are the media cache's sampled frames (``TIKTOK_ASSETS_SAMPLE_FPS``, 2 by default), in
batches of the ``vision`` group's ``batch_size``. No COCO weights exist offline: unless
``TIKTOK_ASSETS_OBJECT_MODEL`` (``_GPU`` on CUDA) resolves, object_detection runs a randomly
initialised YOLOv8n of the real architecture, which measures the cost of the code path (letterbox,
inference, NMS, tracking) for a yolov8n-sized model, not its detections; the report says which.
content_safety runs the real NudeNet 320n graph. Each analyzer runs once to load its model, then
is timed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import prepare_clip, report  # noqa: E402

from tiktok_assets.analyzers import AnalyzerContext, all_specs, get_spec, run_analyzer  # noqa: E402
from tiktok_assets.config import load_settings  # noqa: E402
from tiktok_assets.gpu_groups import load_groups  # noqa: E402
from tiktok_assets.model_registry import ModelUnavailable, process_loader  # noqa: E402
from tiktok_assets.model_registry.resource import FakeModelLoader  # noqa: E402

NAMES = ["object_detection", "product_detection", "content_safety"]


class _Models:
    """The process loader, with a tiny random YOLO standing in when no YOLO weights resolve."""

    def __init__(self, settings, workdir: Path):
        from tiktok_assets.analyzers import _yolo

        self.real = process_loader(settings)
        self.fake = FakeModelLoader(settings, workdir, {"yolov8n": _yolo.tiny_random_yolo,
                                                        "yolov8x": _yolo.tiny_random_yolo})
        self.stand_in = False

    def load(self, model_id: str, device: str = "cpu", path: str | None = None):
        try:
            return self.real.load(model_id, device, path)
        except ModelUnavailable:
            if model_id not in ("yolov8n", "yolov8x"):
                raise
            self.stand_in = True
            return self.fake.load(model_id, device, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=49.0)
    parser.add_argument("--width", type=int, default=1080)
    parser.add_argument("--height", type=int, default=1920)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: the vision group's device here)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    settings = load_settings()
    groups = load_groups(settings.gpu_groups_file, tuple(all_specs()), settings.device_override)
    media, decode_s = prepare_clip(args.seconds, args.width, args.height, args.workdir)
    models = _Models(settings, Path(tempfile.mkdtemp(prefix="bench-objects-models-")))
    inputs: dict = {}
    examined: dict = {}
    results = []
    for name in NAMES:
        spec = get_spec(name)
        group = groups.group_of(name)
        device = args.device or group.resolved_device(groups.cuda)
        context = AnalyzerContext(video_id=media.video_id, settings=settings, device=device,
                                  batch_size=group.batch_size, models=models,
                                  inputs={d: inputs[d] for d in spec.depends_on if d in inputs},
                                  input_examined={d: examined[d] for d in spec.depends_on if d in examined})
        run_analyzer(spec, media, context)  # loads the model
        began = time.perf_counter()
        run = run_analyzer(spec, media, context)
        results.append((name, time.perf_counter() - began, run.table.num_rows))
        inputs[name], examined[name] = run.table, run.examined
        print(f"{name}: group {group.name}, device {device}, batch {group.batch_size}, "
              f"model {run.metadata.get('model', '-')}", flush=True)
    frames = len(media.frame_times)
    report(f"object/product/safety analyzers ({frames} sampled frames)", media, decode_s, results)
    if models.stand_in:
        print("object_detection ran a RANDOMLY initialised YOLOv8n (no COCO weights here): the cost of the code "
              "path for a yolov8n-sized model; its tracks, and so the products, mean nothing")


if __name__ == "__main__":
    main()
