"""``fer-bench export``: a trained run's inference network as a file that needs no fer-bench to use.

The network is the method's :meth:`~fer_bench.methods.base.Method.inference_network` (backbone and
classifier; no training heads), in eval mode on the CPU, written as a ``state_dict``, a TorchScript
module or an ONNX graph. Beside it, ``FILE.json`` records what the network expects and returns:
class names in logit order, input size and the normalisation ``(pixel / 255 - mean) / std`` of RGB
images resized (bilinear, antialiased) to the input size, the run and its epoch.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Any

import torch

from ..atomic import save_torch, write_atomic, write_json
from ..runs import RunError
from .build import augment_config
from .trained import load_trained

FORMATS: tuple[str, ...] = ("state_dict", "torchscript", "onnx")
ONNX_EXTRA = "pip install 'fer-bench[onnx]'"


def check_format(fmt: str) -> None:
    """An unknown format, or ONNX without its package, is an error before anything is loaded or written."""
    if fmt not in FORMATS:
        raise RunError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    if fmt == "onnx" and importlib.util.find_spec("onnx") is None:
        raise RunError(f"--format onnx needs the onnx package, which is not installed: {ONNX_EXTRA}")


def export_run(run_dir: Path | str, out: Path | str, fmt: str = "state_dict") -> dict[str, Any]:
    """Write the run's inference network to ``out`` and its description to ``out.json``; return the latter."""
    check_format(fmt)
    trained = load_trained(run_dir, device_name="cpu", progress=False)
    net = trained.method.inference_network().eval()
    aug = augment_config(trained.config["recipe"])
    size = aug.image_size
    meta: dict[str, Any] = {
        "format": fmt, "run_dir": str(trained.run_dir), "method": trained.config["method"],
        "dataset": trained.dataset.name, "epoch": trained.epoch,
        "class_names": list(trained.dataset.class_names),
        "input": {"shape": [None, 3, size, size], "dtype": "float32", "channels": "RGB",
                  "resize": "bilinear, antialiased, to image_size x image_size",
                  "normalise": "(pixel / 255 - mean) / std", "mean": list(aug.mean), "std": list(aug.std),
                  "normalize": trained.config["recipe"]["normalize"]},
        "output": "logits, one per class_names entry (argmax = prediction)",
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(1, 3, size, size)
    if fmt == "state_dict":
        save_torch(out, {k: v.detach().cpu() for k, v in net.state_dict().items()})
    else:
        def write(tmp: Path) -> None:
            # torch deprecates TorchScript in favour of torch.export; the file format itself is stable.
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                warnings.simplefilter("ignore", DeprecationWarning)
                if fmt == "torchscript":
                    torch.jit.trace(net, example).save(str(tmp))
                else:
                    torch.onnx.export(net, (example,), str(tmp), input_names=["images"], output_names=["logits"],
                                      dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)

        write_atomic(out, write)
    write_json(out.with_name(out.name + ".json"), meta)
    return meta
