"""Training throughput of every registered method, relative to the Baseline.

Runs one warm-up epoch and one timed epoch per method through the engine's own
``train_one_epoch`` on the same data, device and profile, and prints images/s
and the ratio to the Baseline. Run it on an otherwise idle machine:

    python benchmarks/method_throughput.py [--dataset synthfer] [--device auto] [--epochs 1]
"""

from __future__ import annotations

import argparse
import platform

import torch

from fer_bench.engine.optim import build_optimizer, build_scheduler
from fer_bench.engine.run import RunSpec, build_context, load_dataset, resolve, select_device, train_one_epoch
from fer_bench.registry import list_methods


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthfer")
    parser.add_argument("--root")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs per method")
    parser.add_argument("--methods", default=",".join(list_methods()))
    args = parser.parse_args()

    device = select_device(args.device)
    dataset = None
    rates: dict[str, float] = {}
    for name in args.methods.split(","):
        run = resolve(RunSpec(method=name, dataset=args.dataset, root=args.root))
        if dataset is None:
            dataset = load_dataset(run.dataset_cls, args.root, {}, progress=False)
            images = torch.from_numpy(dataset.train.images.copy()).to(device)
        torch.manual_seed(0)
        ctx = build_context(run.method_cls, run.recipe, 0, dataset, dataset.train.labels, device)
        method = run.method_cls(ctx, run.hparams)
        optimizer = build_optimizer(method.param_groups(), run.recipe)
        scheduler = build_scheduler(optimizer, run.recipe, ctx.steps_per_epoch)
        amp = device.type == "cuda"
        train_one_epoch(method, ctx, optimizer, scheduler, images, 0, amp, progress=False)  # warm-up
        timed = [train_one_epoch(method, ctx, optimizer, scheduler, images, e, amp, progress=False)
                 for e in range(1, 1 + args.epochs)]
        rates[name] = sum(r["images_per_s"] for r in timed) / len(timed)

    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"{args.dataset}, profile {run.profile}, device {device} ({gpu}), {torch.get_num_threads()} threads")
    base = rates.get("baseline")
    for name, rate in rates.items():
        ratio = f"{rate / base:.2f}x baseline" if base else ""
        print(f"  {name:<10} {rate:8.0f} images/s  {ratio}")


if __name__ == "__main__":
    main()
