"""Transfer studies: one fine-tuning recipe from several initialisations, over seeds.

What ``make demo`` (``tools/run_demo.py``) and ``benchmarks/bench_transfer.py`` share. Every step
runs the user's own tools in a subprocess (``tools/pretrain_net.py``, ``tools/train_net.py``,
``tools/convert_checkpoint.py``), so a study measures the path a user takes from a checkpoint to a
fine-tuned detector, ``MODEL.WEIGHTS`` included. Steps run ``jobs`` at a time, each with
``cores // jobs`` math threads: on a few shared cores, one thread per process avoids the spinning
of oversubscribed thread pools, and two single-threaded runs go faster together than one after the
other. The runs that make weights come first: the fine-tunings, which wait on them, run at a lower
priority and load their data in their own process (``DATALOADER.NUM_WORKERS 0``: every loader
worker is a fresh interpreter that imports torch, pure start-up cost on cores the runs already
fill), while a pretraining keeps its data workers, which overlap its steps. Samples are drawn from
per-index generators, so the figures do not depend on the number of workers.

A run whose folder already holds ``model_final.pth`` is reused, one with checkpoints but no final
one is resumed: a study killed half way, or run again with more seeds, redoes nothing.
"""

import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Dict, List, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass(frozen=True)
class Init:
    """An initialisation of the fine-tuned detector.

    Attributes:
        name: short name (a folder name, a key of results.json).
        label: its row in tables and plots.
        recipe: the config that makes its weights; "" for random initialisation.
        supervised: the recipe is a detector trained with labels (``tools/train_net.py``) whose
            trunk is exported (``tools/convert_checkpoint.py --to torchvision``); otherwise it is a
            pretraining (``tools/pretrain_net.py``) whose checkpoint is MODEL.WEIGHTS as it is.
    """

    name: str
    label: str
    recipe: str = ""
    supervised: bool = False


def run_tool(args: Sequence[str], log_path: str, threads: int, nice: int = 0) -> float:
    """``python <args>`` from the repository root, its output appended to ``log_path``, at
    ``nice`` more than this process's niceness (POSIX; 0 elsewhere).

    Returns:
        the wall time in seconds.
    Raises:
        RuntimeError: the tool failed (the message names it and the log).
    """
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    start = time.time()
    with open(log_path, "a") as log:
        proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=log, stderr=log, env=env)
        try:
            # from here rather than preexec_fn, which is unsafe where threads run (callers are)
            if nice and hasattr(os, "setpriority"):
                os.setpriority(os.PRIO_PROCESS, proc.pid, os.getpriority(os.PRIO_PROCESS, 0) + nice)
            returncode = proc.wait()
        except BaseException:  # Ctrl-C or an error here: the tool does not outlive the study
            proc.kill()
            proc.wait()
            raise
    if returncode:
        raise RuntimeError(f"{args[0]} failed (exit {returncode}); its output is in {log_path}")
    return time.time() - start


def train_or_reuse(
    tool: str, config: str, out: str, opts: Sequence[str], threads: int, nice: int = 0
) -> dict:
    """``tools/<tool> --config-file config OUTPUT_DIR out opts`` unless ``out`` already holds its
    model_final.pth; a folder of an earlier, unfinished attempt is resumed (``--resume``: from its
    newest checkpoint, or from scratch when it has none).

    Returns:
        {"path": out/model_final.pth, "seconds": wall time (0 when reused), "reused": bool,
        "command": the command line}.
    """
    final = os.path.join(out, "model_final.pth")
    args = [os.path.join("tools", tool), "--config-file", config, "OUTPUT_DIR", out, *opts]
    command = "python " + " ".join(args)
    if os.path.isfile(final):
        return {"path": final, "seconds": 0.0, "reused": True, "command": command}
    if os.path.isdir(out):
        args.insert(1, "--resume")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    print(f"  {command}\n", end="", flush=True)  # one write: runs start from several threads
    seconds = run_tool(args, out + ".log", threads, nice)
    return {"path": final, "seconds": seconds, "reused": False, "command": command}


def make_weights(init: Init, out: str, opts: Sequence[str], threads: int) -> dict:
    """The MODEL.WEIGHTS of ``init``, made in ``out`` (or reused); see :class:`Init`.

    Returns:
        :func:`train_or_reuse`'s dict, "path" being the file for MODEL.WEIGHTS ("" for random).
    """
    if not init.recipe:
        return {"path": "", "seconds": 0.0, "reused": True, "command": ""}
    if not init.supervised:
        return train_or_reuse("pretrain_net.py", init.recipe, out, opts, threads)
    run = train_or_reuse("train_net.py", init.recipe, out, opts, threads)
    trunk = os.path.join(out, "trunk_torchvision.pth")
    if not os.path.isfile(trunk):
        args = ["tools/convert_checkpoint.py", run["path"], trunk, "--to", "torchvision"]
        run["seconds"] += run_tool(args, out + ".log", threads)
    return dict(run, path=trunk)


# Fine-tunings yield the cores to the runs that make weights (nice +5: about a quarter of a core
# beside one run at 0), and load in-process: what the other fine-tunings wait on finishes first.
FINETUNE_NICE = 5
IN_PROCESS = ["DATALOADER.NUM_WORKERS", "0"]


def weights_and_finetunings(
    inits: Sequence[Init],
    weights_dir: str,
    weight_opts: Sequence[str],
    runs: Dict[object, tuple],
    finetune_config: str,
    jobs: int,
) -> tuple:
    """Make every initialisation's weights (in ``weights_dir/<name>``) and run every fine-tuning
    of ``runs`` = {key: (init name, run folder, config overrides)}, ``jobs`` runs at once with
    :func:`threads_per_job` math threads each. A fine-tuning starts as soon as its own weights
    exist (random init's at once), so the cores stay busy while the longest pretraining runs;
    fine-tunings run at a lower priority (:data:`FINETUNE_NICE`), loading in-process, than the
    runs that make weights, on which the other fine-tunings wait.

    Returns:
        ({init name: :func:`make_weights` dict}, {key: :func:`train_or_reuse` dict}).
    """
    threads = threads_per_job(jobs)
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        pending = {
            i.name: pool.submit(
                make_weights, i, os.path.join(weights_dir, i.name), weight_opts, threads
            )
            for i in inits
        }
        weights, finetuned = {}, {}
        while pending:
            done, _ = wait(pending.values(), return_when=FIRST_COMPLETED)
            for name in [n for n, f in pending.items() if f in done]:
                weights[name] = pending.pop(name).result()  # raises if that run failed
                for key, (init, run_dir, opts) in runs.items():
                    if init == name:
                        args = ["MODEL.WEIGHTS", weights[name]["path"], *IN_PROCESS, *opts]
                        call = ("train_net.py", finetune_config, run_dir, args, threads)
                        finetuned[key] = pool.submit(train_or_reuse, *call, FINETUNE_NICE)
        return (
            {i.name: weights[i.name] for i in inits},
            {k: finetuned[k].result() for k in runs},
        )


def run_all(calls: Dict[object, tuple], jobs: int) -> dict:
    """``{key: fn(*args)}`` for ``calls = {key: (fn, *args)}``, ``jobs`` calls at a time."""
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        futures = {key: pool.submit(*call) for key, call in calls.items()}
        return {key: future.result() for key, future in futures.items()}


def threads_per_job(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


def probe_crops(out: str, threads: int) -> str:
    """The labelled object crops the linear probes use (made once in ``out``): 400 synthetic
    scenes of seed 5, none fine-tuned or tested on (``write_synthetic_coco``), cut into
    train/ and val/ class folders by ``tools/make_crops.py``."""
    from insloc.data.detection.synthetic import write_synthetic_coco

    crops = os.path.join(out, "crops")
    if not os.path.isdir(crops):
        scenes = os.path.join(out, "scenes")
        if not os.path.isdir(scenes):
            write_synthetic_coco(scenes, num_images=400, image_size=128, seed=5)
        args = ["tools/make_crops.py", os.path.join(scenes, "instances.json"), crops]
        run_tool([*args, "--min-size", "12", "--context", "0.25"], out + ".log", threads)
    return crops


def linear_probe(weights: Dict[str, str], random_config: str, data: str, out: str, threads: int):
    """``tools/linear_eval.py`` on ``data`` for every trunk of ``weights`` ({name: file}, "" for
    the random trunk of ``random_config``), every layer, class-balanced.

    Returns:
        {name: (best layer, its mean per-class test accuracy in percent)}.
    """
    results = os.path.join(out, "results.json")
    if not os.path.isfile(results):
        args = ["tools/linear_eval.py", "--data", data, "--layers", "all", "--balanced"]
        args += ["--resize", "64", "--crop", "64", "--output", out]
        for name, path in weights.items():
            args += ["--checkpoint", f"{name}={path}"] if path else []
            args += [] if path else ["--random-init", f"{name}={random_config}"]
        run_tool(args, out + ".log", threads)
    with open(results) as f:
        per_layer = json.load(f)["results"]
    best = {}
    for name, layers in per_layer.items():
        layer = max(layers, key=lambda k: layers[k]["mean_class_accuracy"])
        best[name] = (layer, 100 * layers[layer]["mean_class_accuracy"])
    return best


def matching(path: str, opts: Sequence[str], out: str, threads: int) -> dict:
    """``tools/eval_matching.py`` with the features of the trunk in ``path`` ("" random) and
    config overrides ``opts``; returns its pck.json."""
    result = os.path.join(out, "pck.json")
    if not os.path.isfile(result):
        args = ["tools/eval_matching.py", "--config-file", "configs/matching/eval_R50_res4.yaml"]
        run_tool([*args, "MODEL.WEIGHTS", path, *opts, "OUTPUT_DIR", out], out + ".log", threads)
    with open(result) as f:
        return json.load(f)


def read_results(run_dir: str, test_set: str) -> dict:
    """{"box": AP, "box50": AP50, "box75": AP75, "mask": mask AP (nan without masks)} of a
    fine-tuning run's final evaluation (its results.json), in percent."""
    with open(os.path.join(run_dir, "results.json")) as f:
        result = json.load(f)[test_set]
    box, segm = result["bbox"], result.get("segm", {})
    nan = float("nan")
    return {
        "box": box["AP"],
        "box50": box["AP50"],
        "box75": box["AP75"],
        "mask": segm.get("AP", nan),
    }


def read_curve(run_dir: str, test_set: str) -> Dict[int, tuple]:
    """{iteration: (box AP, mask AP)} of every evaluation of a fine-tuning run (metrics.jsonl)."""
    curve = {}
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            row = json.loads(line)
            box = row.get(f"{test_set}/bbox/AP")
            if box is not None:
                curve[row["iteration"]] = (box, row.get(f"{test_set}/segm/AP", float("nan")))
    return curve


def mean_std(values: Sequence[float]) -> tuple:
    """Mean and sample standard deviation (n - 1; nan for one value)."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else float("nan")
    return mean, std


def gains_over_random(rows: Dict[str, List[float]], labels: Dict[str, str]) -> List[str]:
    """Lines saying, per initialisation, its box AP gain over "random" and whether the gain is
    more than twice the larger of the two seed spreads (the bar of a claim of value)."""
    if "random" not in rows:
        return []
    base, base_std = mean_std(rows["random"])
    lines = []
    for name, values in rows.items():
        if name == "random":
            continue
        mean, std = mean_std(values)
        margin = 2 * max(std, base_std)
        verdict = "yes" if mean - base > margin else "no"
        lines.append(
            f"  {labels[name]:<22}{mean - base:+6.1f}  (2 x the larger spread: {margin:.1f}): "
            f"{verdict}"
        )
    return lines


def plot_curves(
    curves: Dict[str, Dict[int, Dict[int, tuple]]], labels: Dict[str, str], title: str, path: str
) -> None:
    """Held-out box AP against fine-tuning iteration: per initialisation the mean over seeds and a
    band from the lowest to the highest seed.

    Args:
        curves: {init: {seed: {iteration: (box AP, mask AP)}}}.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for name, per_seed in curves.items():
        iterations = sorted(set.intersection(*(set(c) for c in per_seed.values())))
        if not iterations:
            continue
        values = [[per_seed[s][i][0] for s in per_seed] for i in iterations]
        mean = [sum(v) / len(v) for v in values]
        (line,) = ax.plot(iterations, mean, marker="o", ms=3, label=labels[name])
        low, high = [min(v) for v in values], [max(v) for v in values]
        ax.fill_between(iterations, low, high, alpha=0.2, color=line.get_color(), linewidth=0)
    ax.set_xlabel("fine-tuning iteration")
    ax.set_ylabel("held-out box AP (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
