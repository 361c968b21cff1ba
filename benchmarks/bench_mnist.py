"""Benchmark: the classic MNIST training job of *Deep Learning from Scratch*,
with ``backprop`` and, side by side, with PyTorch on the CPU.

The job: a 784-50-10 net with ReLU (``TwoLayerNet``), 10,000 SGD steps on
mini-batches of 100 rows drawn at random, learning rate 0.1, initial weights
drawn from a normal distribution with standard deviation 0.01 (biases zero),
and train and test accuracy on the full sets at step 0, every 600 steps and
after the last step.

* ``ours``: ``backprop.TwoLayerNet(dtype=np.float32)`` trained by
  ``backprop.train`` with ``backprop.SGD(lr=0.1)``.
* ``torch``: the same job with ``nn.Linear``/``nn.ReLU``/``nn.CrossEntropyLoss``
  and ``torch.optim.SGD``; same initial weights (copied from a TwoLayerNet with
  the same seed), same mini-batches (drawn the way ``backprop.train`` draws
  them), accuracy in chunks of 10,000 rows like ``TwoLayerNet.accuracy``.

Each run is a fresh child process, so its peak memory (``ru_maxrss``, which
includes imports and data loading) is its own. The parent prints every run,
then a table (mean and sample standard deviation over the repeats) and the
ratios ours / torch.

Usage::

    export BACKPROP_DATA=/path/to/folder/with/the/mnist/gz/files
    python benchmarks/bench_mnist.py                 # both, once
    python benchmarks/bench_mnist.py --repeat 3      # both, three times each
    python benchmarks/bench_mnist.py --only ours --steps 1000

The data comes from ``backprop.data.load_mnist`` (float32 pixels in [0, 1],
int64 labels); it reads the folder in ``$BACKPROP_DATA``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time

INPUT, HIDDEN, OUTPUT = 784, 50, 10
BATCH_SIZE = 100
LR = 0.1
EVAL_EVERY = 600
WEIGHT_INIT_STD = 0.01
EVAL_CHUNK = 10_000  # rows per forward pass when measuring accuracy (as TwoLayerNet.accuracy)
FRAMEWORKS = ("ours", "torch")
RESULT_TAG = "RESULT "


def default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (2**20 bytes)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


# --------------------------------------------------------------------------
# Children: one training run each
# --------------------------------------------------------------------------


def run_ours(steps: int, seed: int, threads: int) -> dict:
    import backprop
    import numpy as np
    from backprop.data import load_mnist

    t0 = time.perf_counter()
    (x_train, t_train), (x_test, t_test) = load_mnist(normalize=True, flatten=True)
    load_s = time.perf_counter() - t0

    net = backprop.TwoLayerNet(
        INPUT, HIDDEN, OUTPUT, weight_init_std=WEIGHT_INIT_STD, seed=seed, dtype=np.float32
    )
    t0 = time.perf_counter()
    history = backprop.train(
        net,
        x_train,
        t_train,
        x_test,
        t_test,
        optimizer=backprop.SGD(lr=LR),
        steps=steps,
        batch_size=BATCH_SIZE,
        eval_every=EVAL_EVERY,
        seed=seed,
        progress=False,
    )
    train_s = time.perf_counter() - t0
    return {
        "load_s": load_s,
        "train_s": train_s,
        "train_acc": history.train_acc[-1],
        "test_acc": history.test_acc[-1],
        "final_loss": history.loss[-1],
        "evals": len(history.eval_steps),
        "dtype": str(net.params["W1"].dtype),
        "version": f"backprop {backprop.__version__}, numpy {np.__version__}",
    }


def run_torch(steps: int, seed: int, threads: int) -> dict:
    import backprop
    import numpy as np
    import torch
    from backprop.data import load_mnist
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(seed)

    t0 = time.perf_counter()
    (x_train, t_train), (x_test, t_test) = load_mnist(normalize=True, flatten=True)
    # from_numpy shares the memory: no copies of the data.
    x_train, t_train, x_test, t_test = (
        torch.from_numpy(a) for a in (x_train, t_train, x_test, t_test)
    )
    load_s = time.perf_counter() - t0

    model = nn.Sequential(nn.Linear(INPUT, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, OUTPUT))
    # The same initial weights as TwoLayerNet(seed=seed): normal, std 0.01, zero biases.
    # nn.Linear keeps its weight as (out, in), the transpose of the TwoLayerNet's W.
    init = backprop.TwoLayerNet(
        INPUT, HIDDEN, OUTPUT, weight_init_std=WEIGHT_INIT_STD, seed=seed, dtype=np.float32
    ).params
    with torch.no_grad():
        for linear, w, b in ((model[0], "W1", "b1"), (model[2], "W2", "b2")):
            linear.weight.copy_(torch.from_numpy(init[w].T))
            linear.bias.copy_(torch.from_numpy(init[b]))
    del init
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def accuracy(x: torch.Tensor, t: torch.Tensor) -> float:
        correct = 0
        with torch.inference_mode():
            for start in range(0, x.shape[0], EVAL_CHUNK):
                scores = model(x[start : start + EVAL_CHUNK])
                correct += int((scores.argmax(dim=1) == t[start : start + EVAL_CHUNK]).sum())
        return correct / x.shape[0]

    t0 = time.perf_counter()
    # Mini-batches drawn exactly as backprop.train draws them.
    rng = np.random.default_rng(seed)
    n = x_train.shape[0]
    losses: list[float] = []
    train_acc = test_acc = float("nan")
    evals = 0
    for step in range(steps):
        batch = torch.from_numpy(rng.integers(0, n, size=BATCH_SIZE))
        loss = loss_fn(model(x_train[batch]), t_train[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % EVAL_EVERY == 0 or step == steps - 1:
            train_acc = accuracy(x_train, t_train)
            test_acc = accuracy(x_test, t_test)
            evals += 1
    train_s = time.perf_counter() - t0
    return {
        "load_s": load_s,
        "train_s": train_s,
        "train_acc": train_acc,
        "test_acc": test_acc,
        "final_loss": losses[-1],
        "evals": evals,
        "dtype": str(model[0].weight.dtype).removeprefix("torch."),
        "version": f"torch {torch.__version__} ({torch.get_num_threads()} threads), numpy {np.__version__}",
    }


def child(framework: str, steps: int, seed: int, threads: int) -> None:
    if framework == "warmup":
        from backprop.data import load_mnist

        load_mnist()  # builds the cache if needed and brings the files into the page cache
        return
    result = {"ours": run_ours, "torch": run_torch}[framework](steps, seed, threads)
    result["framework"] = framework
    result["peak_mb"] = peak_rss_mb()
    print(RESULT_TAG + json.dumps(result), flush=True)


# --------------------------------------------------------------------------
# Parent: start the children, collect and print
# --------------------------------------------------------------------------


def machine_cpu_seconds() -> float | None:
    """CPU time spent by all processes on this machine so far (Linux), in seconds."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # user..steal


def children_cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_child(framework: str, steps: int, seed: int, threads: int) -> dict:
    env = dict(os.environ)
    # Thread pools read these when the libraries load, so set them for the child.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        framework,
        "--steps",
        str(steps),
        "--seed",
        str(seed),
        "--threads",
        str(threads),
    ]
    machine0, child0, wall0 = machine_cpu_seconds(), children_cpu_seconds(), time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)  # stderr passes through
    machine1, child1, wall1 = machine_cpu_seconds(), children_cpu_seconds(), time.perf_counter()
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not lines:
        sys.stdout.write(proc.stdout)
        raise SystemExit(f"the {framework} run failed (exit code {proc.returncode})")
    result = json.loads(lines[-1][len(RESULT_TAG) :])
    # CPU used meanwhile by everything else on the machine, in cores: anything
    # well above 0 competes with the run for the CPUs and makes its times unreliable.
    result["other_load"] = (
        None
        if machine0 is None
        else max(0.0, (machine1 - machine0) - (child1 - child0)) / (wall1 - wall0)
    )
    return result


def mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


COLUMNS = [  # key, header, format
    ("load_s", "load s", "{:.2f}"),
    ("train_s", "train s", "{:.2f}"),
    ("peak_mb", "peak MB", "{:.0f}"),
    ("train_acc", "train acc", "{:.4f}"),
    ("test_acc", "test acc", "{:.4f}"),
]


def print_run(i: int, r: dict) -> None:
    cells = "  ".join(f"{header} {fmt.format(r[key])}" for key, header, fmt in COLUMNS)
    other = "" if r["other_load"] is None else f"  other load {r['other_load']:.2f} cores"
    print(
        f"run {i} {r['framework']:<5}  {cells}{other}  ({r['version']}, {r['dtype']})", flush=True
    )


BUSY = 0.25  # cores used by other processes above which a run's times are suspect


def print_table(results: dict[str, list[dict]]) -> None:
    repeats = max(len(rs) for rs in results.values())
    print()
    print(
        f"mean ± sd over {repeats} run(s)"
        if repeats > 1
        else "single run (use --repeat for spread)"
    )
    width = 18
    print(f"{'':<6}" + "".join(f"{header:>{width}}" for _, header, _ in COLUMNS))
    for framework, rs in results.items():
        if not rs:
            continue
        cells = []
        for key, _, fmt in COLUMNS:
            m, sd = mean_sd([r[key] for r in rs])
            cells.append(f"{fmt.format(m)} ± {fmt.format(sd)}" if len(rs) > 1 else fmt.format(m))
        print(f"{framework:<6}" + "".join(f"{c:>{width}}" for c in cells))
    ours, torch_ = results.get("ours"), results.get("torch")
    if ours and torch_:
        print()
        for key, what in (
            ("train_s", "training time"),
            ("peak_mb", "peak memory"),
            ("load_s", "data loading"),
        ):
            ratio = statistics.fmean(r[key] for r in ours) / statistics.fmean(
                r[key] for r in torch_
            )
            pairs = [o[key] / t[key] for o, t in zip(ours, torch_, strict=False)]
            spread = (
                f"  (per run: {', '.join(f'{p:.2f}' for p in pairs)})" if len(pairs) > 1 else ""
            )
            print(f"ours / torch, {what + ':':<15} {ratio:.2f}{spread}")
    busy = [r["other_load"] for rs in results.values() for r in rs if r["other_load"] is not None]
    if busy and max(busy) > BUSY:
        print(
            f"\nwarning: other processes used up to {max(busy):.2f} cores during some runs; "
            "their times are not reliable (with threads = cores, BLAS and torch threads slow down a lot)"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--steps", type=int, default=10_000, help="SGD steps per run (default 10000)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per framework (default 1)")
    parser.add_argument("--only", choices=FRAMEWORKS, help="run only this framework")
    parser.add_argument(
        "--threads",
        type=int,
        default=default_threads(),
        help="threads for BLAS and torch (default: the cores available, %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for initial weights and batches")
    parser.add_argument("--child", choices=FRAMEWORKS + ("warmup",), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.repeat < 1 or args.threads < 1:
        parser.error("--steps, --repeat and --threads must be at least 1")

    if args.child:
        child(args.child, args.steps, args.seed, args.threads)
        return

    frameworks = [args.only] if args.only else list(FRAMEWORKS)
    if "torch" in frameworks and importlib.util.find_spec("torch") is None:
        if args.only == "torch":
            raise SystemExit("torch is not installed: pip install torch==2.13.0")
        print("torch is not installed: running ours only")
        frameworks.remove("torch")

    print(
        f"MNIST {INPUT}-{HIDDEN}-{OUTPUT} ReLU, {args.steps} SGD steps, batch {BATCH_SIZE}, "
        f"lr {LR}, accuracy every {EVAL_EVERY} steps; {args.threads} thread(s); "
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPU(s); BACKPROP_DATA={os.environ.get('BACKPROP_DATA', '(unset)')}",
        flush=True,
    )
    # One untimed load first: otherwise the first run alone pays for a cold
    # page cache (and, on the first call ever, for parsing the .gz files).
    warmup = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", "warmup"])
    if warmup.returncode != 0:
        raise SystemExit(f"loading MNIST failed (exit code {warmup.returncode})")
    results: dict[str, list[dict]] = {f: [] for f in frameworks}
    for i in range(1, args.repeat + 1):
        for framework in frameworks:  # interleaved, so slow drifts hit both alike
            r = run_child(framework, args.steps, args.seed, args.threads)
            results[framework].append(r)
            print_run(i, r)
    print_table(results)


if __name__ == "__main__":
    main()
