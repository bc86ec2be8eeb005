"""Real architectures at realistic sizes: tvmext against ONNX Runtime, PyTorch eager
and OpenVINO, in one run.

Run: .venv/bin/python benchmarks/real_models.py [--models resnet,vit] [--threads 2]
     [--repeat 10] [--rounds 3] [--runtimes dnnl,llvm,ORT,torch,OpenVINO]
     (OpenVINO is a benchmark-only dependency: pip install -e '.[bench]')

For each ``transformers`` model of ``tests/model_zoo.py`` at its published size
(``full=True``), and for two small models of our own shapes (a 2-block residual CNN at
64×56², an MLP 64×512→1024→64), it exports the ONNX file and times, with the same
thread count: tvmext ``"dnnl, llvm"`` and ``"llvm"``, ONNX Runtime, PyTorch eager (the
module the ONNX file was exported from) and OpenVINO with ``INFERENCE_PRECISION_HINT:
f32`` (its default on CPUs with AMX or AVX512-BF16 is bf16, a different accuracy
contract). Each runtime's output is checked against ONNX Runtime's first. Runtimes are
timed in interleaved rounds, each after the previous one's threads settled; a
runtime's time is the median of its round medians. Ratios are ORT time / runtime time
(above 1: faster than ONNX Runtime). After the per-model table comes one per family:
the geometric mean of each ratio over the family's models, overall too, and the
family's worst model (lowest ratio of the first tvmext runtime timed).

The zoo (``tests/model_zoo.py`` says what each brings and its exact sizes):

- cnn: resnet (ResNet-50), mobilenet_v1, mobilenet_v2, efficientnet (B0), regnet
  (RegNetY-400MF), bit (BiT-S-R50x1), convnext (ConvNeXt-T), convnextv2 (V2-T); 224²
- vision transformer: vit (6 layers, 384 wide), deit (DeiT-S), swin (Swin-T), swinv2
  (V2-T, 256²), pvt_v2 (B0), mobilevit (XXS, 256²), levit (128S), cvt (CvT-13); 224²
- detection/segmentation: segformer (MiT-B0, 512²), upernet (ConvNeXt-T, 192²), dpt
  (depth; 4 ViT-S layers, 384²), detr (ResNet-50, 6+6 layers, 512²)
- text encoder (4 layers, 256 wide, 2×128 tokens): bert, roberta, distilbert, electra,
  albert, deberta_v2, t5_encoder
- text decoder (4 layers, 256 wide, 1×128 tokens): gpt2, llama, mistral, qwen2, phi,
  gpt_neox, gemma
- speech: wav2vec2, hubert (1 s at 16 kHz; published feature encoder, 4 layers 768
  wide), whisper (Whisper-tiny's encoder, 80×3000 log-mel)
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from model_zoo import MODELS, export, torch_model
from timing import median_seconds, settle

RUNTIMES = ("dnnl", "llvm", "ORT", "torch", "OpenVINO")  # dnnl: tvmext "dnnl, llvm"
ROUND_SECONDS = 2.0  # a slow runtime (plain llvm convolutions) gets fewer repeats
TOLERANCE = 1e-3  # max |error| / max |ORT output|


def _small_cnn() -> tuple[Any, dict[str, np.ndarray]]:
    """Two residual blocks (conv 3×3, batch norm, ReLU) at 64×56×56, batch 1."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(64, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                nn.Conv2d(64, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64),
            )  # fmt: skip

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x + self.body(x))

    model = nn.Sequential(Block(), Block())
    x = np.random.default_rng(0).standard_normal((1, 64, 56, 56), dtype=np.float32)
    return model.eval(), {"x": x}


def _small_mlp() -> tuple[Any, dict[str, np.ndarray]]:
    """512 → 1024 → 64 with ReLU, batch 64."""
    from torch import nn

    model = nn.Sequential(nn.Linear(512, 1024), nn.ReLU(), nn.Linear(1024, 64))
    x = np.random.default_rng(0).standard_normal((64, 512), dtype=np.float32)
    return model.eval(), {"x": x}


# Our own shapes, small enough that the fixed cost per oneDNN call shows.
SMALL = {"cnn56": _small_cnn, "mlp64": _small_mlp}


def model(name: str, folder: str) -> tuple[str, dict[str, np.ndarray], Any]:
    """(ONNX path, inputs, PyTorch module) of a zoo model at full size or a small one."""
    import torch

    if name in MODELS:
        path, inputs, _ = export(name, folder, full=True)
        return path, inputs, torch_model(name, full=True)[0]
    module, inputs = SMALL[name]()
    path = os.path.join(folder, f"{name}.onnx")
    args = tuple(torch.from_numpy(v) for v in inputs.values())
    with torch.no_grad():
        torch.onnx.export(module, args, path, input_names=list(inputs), dynamo=False)
    return path, inputs, module


def runners(
    name: str, folder: str, threads: int, wanted: Sequence[str]
) -> tuple[dict[str, Callable[[], Any]], Any]:
    """A call per runtime of ``wanted`` (ORT always) for model ``name``, and ONNX
    Runtime's output."""
    import onnxruntime as ort

    import tvmext

    path, inputs, module = model(name, folder)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    calls: dict[str, Callable[[], Any]] = {"ORT": lambda: session.run(None, inputs)[0]}
    for runtime, target in (("dnnl", "dnnl, llvm"), ("llvm", "llvm")):
        if runtime in wanted:
            compiled = tvmext.compile(path, target)
            calls[runtime] = lambda m=compiled: m.run(**inputs)[0]
    if "torch" in wanted:
        import torch

        tensors = tuple(torch.from_numpy(v) for v in inputs.values())

        def eager() -> np.ndarray:
            with torch.no_grad():
                return module(*tensors).numpy()

        calls["torch"] = eager
    if "OpenVINO" in wanted:
        openvino = _openvino(name, path, threads)
        if openvino is not None:
            calls["OpenVINO"] = lambda: openvino.infer(inputs)[0]
    return {r: calls[r] for r in RUNTIMES if r in calls}, calls["ORT"]()


def _openvino(name: str, path: str, threads: int) -> Any:
    """An OpenVINO infer request at fp32, or None (said why) when it rejects the model."""
    import openvino as ov

    try:
        compiled = ov.Core().compile_model(path, "CPU", {
            "INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY", "ENABLE_CPU_PINNING": False,
        })  # fmt: skip
    except RuntimeError as err:  # OpenVINO's ONNX frontend rejects some valid models
        reason = next((line for line in str(err).splitlines() if "While validating" in line), "")
        print(f"{name}: OpenVINO cannot compile it: {reason[:200]}", flush=True)
        return None
    return compiled.create_infer_request()


def wrong(calls: dict[str, Callable[[], Any]], want: np.ndarray) -> list[str]:
    """The runtimes whose output differs from ONNX Runtime's (relative to its largest
    value), each with its error."""
    errors = {
        r: np.max(np.abs(np.asarray(call()) - want)) / np.max(np.abs(want))
        for r, call in calls.items()
    }
    return [f"{r} ({e:.1e})" for r, e in errors.items() if not e <= TOLERANCE]


def timed(calls: dict[str, Callable[[], Any]], repeat: int, rounds: int) -> dict[str, float]:
    """Median seconds per runtime over interleaved rounds."""
    repeats = {}
    for runtime, call in calls.items():
        start = time.perf_counter()
        call()
        once = time.perf_counter() - start
        repeats[runtime] = max(3, min(repeat, int(ROUND_SECONDS / max(once, 1e-6))))
    medians: dict[str, list[float]] = {runtime: [] for runtime in calls}
    for _ in range(rounds):
        for runtime, call in calls.items():
            settle()
            medians[runtime].append(median_seconds(call, repeats[runtime]))
    return {runtime: statistics.median(values) for runtime, values in medians.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join([*MODELS, *SMALL]))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runtimes", default=",".join(RUNTIMES), help="dnnl: tvmext 'dnnl, llvm'")
    args = parser.parse_args()
    wanted = args.runtimes.split(",")
    if "torch" in wanted:
        import torch

        torch.set_num_threads(args.threads)
    folder = tempfile.mkdtemp(prefix="tvmext_real_")
    print(f"{args.threads} threads; median ms; ORT/x: ORT time / x's time (> 1: faster than ORT)")
    print(f"{'model':13}" + "".join(f"{r:>11}" for r in RUNTIMES)
          + "".join(f"{'ORT/' + r:>13}" for r in RUNTIMES if r != "ORT"))  # fmt: skip
    peers = [r for r in RUNTIMES if r != "ORT"]
    rows: dict[str, dict[str, float]] = {}  # model: runtime: ORT/runtime
    for name in args.models.split(","):
        try:
            calls, want = runners(name, folder, args.threads, wanted)
        except Exception as err:  # one model's failure is a row, not the end of the run
            print(
                f"{name:13}failed: {type(err).__name__}: {str(err).splitlines()[0][:200]}",
                flush=True,
            )
            continue
        differ = wrong(calls, want)
        if differ:  # a wrong result is reported, never timed; the other models go on
            print(f"{name:13}differs from ONNX Runtime: {', '.join(differ)}", flush=True)
            continue
        times = timed(calls, args.repeat, args.rounds)
        rows[name] = {r: times["ORT"] / times[r] for r in peers if r in times}
        print(f"{name:13}" + "".join(_cell(times.get(r), 1e3, 11) for r in RUNTIMES)
              + "".join(_cell(rows[name].get(r), 1, 13) for r in peers), flush=True)  # fmt: skip
    print_families(rows, peers)


def family(name: str) -> str:
    """The zoo family of model ``name``; "ours (small)" for our own shapes."""
    return MODELS[name].family if name in MODELS else "ours (small)"


def print_families(rows: dict[str, dict[str, float]], peers: Sequence[str]) -> None:
    """Per family, then over the zoo: the geometric mean of each ORT/runtime ratio, and
    the worst model by the first tvmext runtime timed."""
    timed_peers = [r for r in peers if any(r in row for row in rows.values())]
    if not timed_peers:
        return
    key = next((r for r in ("dnnl", "llvm") if r in timed_peers), timed_peers[0])
    groups: dict[str, list[str]] = {}
    for name in rows:
        groups.setdefault(family(name), []).append(name)
    zoo = [name for name in rows if name in MODELS]
    if zoo:
        groups["overall (zoo)"] = zoo
    print()
    print(f"{'family':24}{'models':>7}" + "".join(f"{'ORT/' + r:>13}" for r in timed_peers)
          + f"   worst by ORT/{key}")  # fmt: skip
    for group, names in groups.items():
        means = {r: geomean([rows[n][r] for n in names if r in rows[n]]) for r in timed_peers}
        ranked = sorted((rows[n][key], n) for n in names if key in rows[n])
        worst = f"{ranked[0][1]} {ranked[0][0]:.2f}" if ranked else "n/a"
        print(f"{group:24}{len(names):7}" + "".join(_cell(means[r], 1, 13) for r in timed_peers)
              + f"   {worst}", flush=True)  # fmt: skip


def geomean(values: Sequence[float]) -> float | None:
    return math.exp(statistics.fmean(map(math.log, values))) if values else None


def _cell(value: float | None, scale: float, width: int) -> str:
    return f"{'n/a':>{width}}" if value is None else f"{value * scale:{width}.2f}"


if __name__ == "__main__":
    main()
