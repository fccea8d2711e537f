"""Throughput of the workloads W1-W6 (see workloads.py) written with Keras 3, as a tutorial user would.

Runs inside one of the Keras environments made by keras_env.py (Keras is never a dependency of lstmkit):

    python benchmarks/keras_env.py tensorflow jax
    benchmarks/.venvs/keras-jax/bin/python benchmarks/bench_keras.py --backend jax --workload W3
    KERAS_BACKEND=tensorflow benchmarks/.venvs/keras-tensorflow/bin/python benchmarks/bench_keras.py --workload W1

What is timed, after a warm-up that includes compilation:

- W1-W5 (training): the model of workloads.py with Keras layers and default settings (`compile` without
  metrics, `jit_compile="auto"`), on DATA_BATCHES random batches of the real shapes. Two ways, interleaved in
  every repeat: `model.fit` on arrays (verbose=0; whole epochs, or an epoch of fewer steps when one epoch
  would take longer than --min-seconds; timed from the first epoch's start to the last one's end, by a
  callback) and a `train_on_batch` loop. Items per optimizer step are workload.items_per_batch. The method
  with the better median is reported; the other's rates are kept in "others".
- W6-gen: the W1 architecture at batch 1, one one-hot character per call, the next character sampled with
  numpy from the softmax of the logits, the LSTM state carried: either by stateful LSTM layers (the state
  lives in the model) or by a functional model that takes and returns the states (h, c) as tensors; each
  called through `predict_on_batch` or directly (`model(x, training=False)`). Every way is first checked
  against one pass of the plain W1 model over the same characters, and only those that carry the state
  compete (the others' rates are kept in "invalid"). 500 characters per repeat, fewer for ways slower than
  500 characters per 2 x --min-seconds ("chars_per_repeat"). `model.predict` per character is timed on a
  few characters only, for the record ("predict_rate").
- W6-bulk: the W1 model on one batch of 256 x 50 one-hot characters, `predict_on_batch` or a direct call.

Threads (--threads T): the process is pinned to T CPUs when the machine has more; OMP_NUM_THREADS is set;
TensorFlow gets T intra-op and T inter-op threads (tf.config.threading; its own choice on T cores); XLA on CPU
(JAX) sizes its thread pool from the pinned CPUs, and at T=1 its multi-threaded Eigen is also turned off through
XLA_FLAGS.

Stdout carries exactly one JSON line, at the end; everything else goes to stderr.
"""

import argparse
import json
import math
import os
import pathlib
import platform
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from workloads import BULK_BATCH, DATA_BATCHES, GENERATE_CHARS, SEED, TRAINING, W1, Workload

WORKLOADS = [*TRAINING, "W6-gen", "W6-bulk"]
BACKENDS = ("tensorflow", "jax")
WARMUP_STEPS = 3          # steps of the warm-up fit epoch and of the warm-up train_on_batch loop
WARMUP_CALLS = 5          # inference calls before timing W6
PREDICT_CHARS = 5         # characters generated with model.predict, for the record only
CHECK_CHARS = 5           # characters used to check that a way of generating carries the LSTM state
STATE_TOLERANCE = 1e-4    # max |logit difference| allowed by that check


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------------
# Process set-up: stdout, backend, threads (all before keras is imported)
# ---------------------------------------------------------------------------------------------------------------

def reserve_stdout():
    """Send fd 1 to stderr, so that libraries cannot print on stdout; return a file on the real stdout."""
    sys.stdout.flush()
    real_stdout = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(real_stdout, "w")


def choose_backend(flag: str | None) -> str:
    """--backend wins over KERAS_BACKEND; one of them must name tensorflow or jax."""
    backend = flag or os.environ.get("KERAS_BACKEND")
    if backend not in BACKENDS:
        raise SystemExit(f"set --backend or KERAS_BACKEND to one of {BACKENDS} (got {backend!r})")
    os.environ["KERAS_BACKEND"] = backend
    return backend


def limit_threads(backend: str, threads: int) -> dict:
    """Limit the process to `threads` CPUs and compute threads; return a record of what was done."""
    done: dict = {"threads": threads}
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        if threads < len(cpus):
            os.sched_setaffinity(0, cpus[:threads])
        done["cpus"] = sorted(os.sched_getaffinity(0))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")   # hide TensorFlow's info and warning lines
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        done["tf_intra_op"] = tf.config.threading.get_intra_op_parallelism_threads()
        done["tf_inter_op"] = tf.config.threading.get_inter_op_parallelism_threads()
    elif threads == 1:
        flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()
    if backend == "jax":
        done["xla_flags"] = os.environ.get("XLA_FLAGS", "")
    return done


def versions(backend: str) -> dict:
    import keras

    found = {"python": platform.python_version(), "keras": keras.__version__, "numpy": np.__version__}
    if backend == "tensorflow":
        import tensorflow as tf

        found["tensorflow"] = tf.__version__
    else:
        import jax
        import jaxlib

        found["jax"] = jax.__version__
        found["jaxlib"] = jaxlib.__version__
    return found


# ---------------------------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------------------------

# A runner does about n units of work (optimizer steps, calls, characters) when asked for n, and returns the
# units it did and the seconds they took.
Runner = Callable[[int], tuple[int, float]]


def clocked(work: Callable[[int], None]) -> Runner:
    """A runner timing work(n) by the wall clock."""
    def run(n: int) -> tuple[int, float]:
        start = time.perf_counter()
        work(n)
        return n, time.perf_counter() - start
    return run


def calibrate(run: Runner, min_seconds: float) -> int:
    """Units of work that one repeat needs to last about min_seconds."""
    n = 1
    while True:
        done, seconds = run(n)
        if seconds >= min_seconds / 5 or n >= 1 << 16:
            return max(1, math.ceil(done * min_seconds / seconds))
        n = 2 * done


def measure(methods: dict[str, Runner], items_per_unit: float, repeats: int, min_seconds: float,
            unit: str) -> dict[str, list[float]]:
    """Rates (items/s) of every method, each repeat lasting about min_seconds."""
    units = {name: calibrate(run, min_seconds) for name, run in methods.items()}
    log(f"  units per repeat: {units}")
    return interleave(methods, units, items_per_unit, repeats, unit)


def interleave(methods: dict[str, Runner], units: dict[str, int], items_per_unit: float,
               repeats: int, unit: str) -> dict[str, list[float]]:
    """Rates (items/s) of every method doing units[method] per repeat; methods alternate order every repeat."""
    rates: dict[str, list[float]] = {name: [] for name in methods}
    names = list(methods)
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else names[::-1]:
            done, seconds = methods[name](units[name])
            rates[name].append(done * items_per_unit / seconds)
            log(f"  repeat {repeat}: {name} {rates[name][-1]:,.1f} {unit}/s")
    return rates


# ---------------------------------------------------------------------------------------------------------------
# Models and data
# ---------------------------------------------------------------------------------------------------------------

def one_hot_input(w: Workload) -> bool:
    """W1 takes one-hot characters: the vocabulary is also the width entering the first LSTM."""
    return w.vocab > 0 and w.input_size == w.vocab


def lstm_stack(w: Workload, stateful: bool = False) -> list:
    """The LSTM layers of `w` (default activations), with Dropout between them, then the Dense head."""
    import keras

    layers = []
    for index in range(w.layers):
        last = index == w.layers - 1
        layers.append(keras.layers.LSTM(w.hidden, return_sequences=w.per_step_head or not last, stateful=stateful))
        if not last and w.dropout > 0:
            layers.append(keras.layers.Dropout(w.dropout))
    layers.append(keras.layers.Dense(w.outputs, activation="sigmoid" if w.loss == "bce" else None))
    return layers


def build_training_model(w: Workload):
    """The model of workload `w` as a keras.Sequential, compiled with its loss and optimiser."""
    import keras

    if one_hot_input(w):
        head = [keras.Input(shape=(w.seq_len, w.vocab))]
    elif w.vocab:
        head = [keras.Input(shape=(w.seq_len,), dtype="int32"), keras.layers.Embedding(w.vocab, w.input_size)]
    else:
        head = [keras.Input(shape=(w.seq_len, w.input_size))]
    model = keras.Sequential([*head, *lstm_stack(w)])
    losses = {
        "xent": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        "bce": keras.losses.BinaryCrossentropy(),
        "mse": keras.losses.MeanSquaredError(),
    }
    optimizers = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}
    model.compile(optimizer=optimizers[w.optimizer](learning_rate=w.lr), loss=losses[w.loss])
    return model


def char_model(batch_size: int | None, seq_len: int | None, stateful: bool):
    """W1's architecture for inference: one-hot characters in, logits out at every step."""
    import keras

    inputs = keras.Input(batch_shape=(batch_size, seq_len, W1.vocab))
    return keras.Sequential([inputs, *lstm_stack(W1, stateful=stateful)])


def training_data(w: Workload, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """DATA_BATCHES batches of random inputs and targets with the workload's shapes, as two arrays."""
    n = DATA_BATCHES * w.batch
    if one_hot_input(w):
        x = np.eye(w.vocab, dtype=np.float32)[rng.integers(0, w.vocab, (n, w.seq_len))]
    elif w.vocab:
        x = rng.integers(0, w.vocab, (n, w.seq_len)).astype(np.int32)
    else:
        x = rng.standard_normal((n, w.seq_len, w.input_size)).astype(np.float32)
    if w.loss == "xent":
        y = rng.integers(0, w.outputs, (n, w.seq_len)).astype(np.int32)
    elif w.loss == "bce":
        y = rng.integers(0, 2, (n, 1)).astype(np.float32)
    else:
        y = rng.standard_normal((n, 1)).astype(np.float32)
    return x, y


def to_numpy(outputs) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(outputs))


# ---------------------------------------------------------------------------------------------------------------
# Training workloads W1-W5
# ---------------------------------------------------------------------------------------------------------------

def fit_runner(model, x: np.ndarray, y: np.ndarray, batch: int) -> Runner:
    """model.fit for about n optimizer steps: whole epochs from one epoch on, else one shorter epoch.

    The epochs are timed (from the start of the first to the end of the last), not fit's set-up, which a user
    pays once per training rather than once per repeat."""
    import keras

    class EpochClock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 0:
                self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.end = time.perf_counter()

    def run(steps: int) -> tuple[int, float]:
        clock = EpochClock()
        if steps < DATA_BATCHES:
            model.fit(x, y, batch_size=batch, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[clock])
        else:
            epochs = math.ceil(steps / DATA_BATCHES)
            model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, callbacks=[clock])
            steps = epochs * DATA_BATCHES
        return steps, clock.end - clock.start
    return run


def train_on_batch_runner(model, x: np.ndarray, y: np.ndarray, batch: int) -> Runner:
    """n calls of model.train_on_batch, cycling through the batches."""
    batches = [(x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch]) for i in range(DATA_BATCHES)]
    position = 0

    def work(steps: int) -> None:
        nonlocal position
        for _ in range(steps):
            model.train_on_batch(*batches[position % DATA_BATCHES])
            position += 1
    return clocked(work)


def bench_training(w: Workload, repeats: int, min_seconds: float) -> dict:
    model = build_training_model(w)
    x, y = training_data(w, np.random.default_rng(SEED))
    runs = {"fit": fit_runner(model, x, y, w.batch), "train_on_batch": train_on_batch_runner(model, x, y, w.batch)}
    log(f"{w.name}: {w.title}; warm-up (compilation)")
    for run in runs.values():
        run(WARMUP_STEPS)
    rates = measure(runs, w.items_per_batch, repeats, min_seconds, w.unit)
    return {**report(rates, w.unit), "jit_compile": model.jit_compile}


def report(rates: dict[str, list[float]], unit: str) -> dict:
    """The method with the better median, its rates, and the rates of the others."""
    method = max(rates, key=lambda name: statistics.median(rates[name]))
    others = {name: values for name, values in rates.items() if name != method}
    return {"unit": unit, "rates": rates[method], "method": method, "others": others}


# ---------------------------------------------------------------------------------------------------------------
# W6: generation at batch 1 and bulk inference
# ---------------------------------------------------------------------------------------------------------------

def sample(logits: np.ndarray, rng: np.random.Generator) -> int:
    """A character drawn from the softmax of one step's logits."""
    z = logits.astype(np.float64)
    cumulative = np.cumsum(np.exp(z - z.max()))
    index = np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right")
    return int(min(index, len(z) - 1))


def one_hot_char(char: int) -> np.ndarray:
    x = np.zeros((1, 1, W1.vocab), dtype=np.float32)
    x[0, 0, char] = 1.0
    return x


def explicit_state_model():
    """W1's architecture at batch 1 taking and returning the LSTM states (h, c per layer) as tensors."""
    import keras

    x = inputs = keras.Input(batch_shape=(1, 1, W1.vocab))
    states_in = [keras.Input(batch_shape=(1, W1.hidden)) for _ in range(2 * W1.layers)]
    states_out = []
    for index in range(W1.layers):
        lstm = keras.layers.LSTM(W1.hidden, return_sequences=True, return_state=True)
        x, h, c = lstm(x, initial_state=states_in[2 * index:2 * index + 2])
        states_out += [h, c]
        if index < W1.layers - 1:
            x = keras.layers.Dropout(W1.dropout)(x)
    logits = keras.layers.Dense(W1.outputs)(x)
    return keras.Model([inputs, *states_in], [logits, *states_out])


class Stepper:
    """One character in, that step's logits out, the LSTM state carried from call to call.

    `stateful`: Keras's stateful LSTM layers keep the state in the model; otherwise the model takes and
    returns it (explicit_state_model) and it is kept here. `how` is "predict_on_batch", "call" (a direct
    call, model(x, training=False)) or "predict" (model.predict)."""

    def __init__(self, model, stateful: bool, how: str) -> None:
        self.model, self.stateful, self.how = model, stateful, how
        self.states: list[np.ndarray] = []

    def reset(self) -> None:
        if self.stateful:
            for layer in self.model.layers:
                if getattr(layer, "stateful", False):
                    layer.reset_state()
        else:
            self.states = [np.zeros((1, W1.hidden), dtype=np.float32) for _ in range(2 * W1.layers)]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        inputs = x if self.stateful else [x, *self.states]
        if self.how == "predict_on_batch":
            outputs = self.model.predict_on_batch(inputs)
        elif self.how == "predict":
            outputs = self.model.predict(inputs, verbose=0)
        else:
            outputs = self.model(inputs, training=False)
        if self.stateful:
            return to_numpy(outputs)
        logits, *states = (to_numpy(output) for output in outputs)
        self.states = states
        return logits


def generator(step: Stepper) -> Runner:
    """From zero state, sample n characters, one call of `step` per character."""
    rng = np.random.default_rng(SEED)

    def work(chars: int) -> None:
        step.reset()
        char = 0
        for _ in range(chars):
            char = sample(step(one_hot_char(char))[0, -1], rng)
    return clocked(work)


def state_error(step: Stepper, full) -> float:
    """Max |difference| of the logits, stepping character by character against one pass of the plain W1 model
    with the same weights; large when the state is not carried from step to step."""
    chars = np.random.default_rng(SEED).integers(0, W1.vocab, CHECK_CHARS)
    step.reset()
    stepped = np.concatenate([step(one_hot_char(c)) for c in chars], axis=1)
    whole = full.predict_on_batch(np.eye(W1.vocab, dtype=np.float32)[chars][None])
    return float(np.abs(stepped - whole).max())


def bench_generation(repeats: int, min_seconds: float) -> dict:
    """Every (model, call) way of generating; those that carry the state correctly compete."""
    stateful = char_model(1, 1, stateful=True)
    explicit = explicit_state_model()
    full = char_model(None, None, stateful=False)
    explicit.set_weights(stateful.get_weights())
    full.set_weights(stateful.get_weights())
    steppers = {f"{kind}/{how}": Stepper(model, kind == "stateful", how)
                for kind, model in (("stateful", stateful), ("explicit_state", explicit))
                for how in ("predict_on_batch", "call")}
    runs = {name: generator(step) for name, step in steppers.items()}

    log("W6-gen: warm-up and state check (stepped vs whole sequence)")
    errors, chars = {}, {}
    for name, run in runs.items():
        run(WARMUP_CALLS)
        errors[name] = state_error(steppers[name], full)
        # Slow ways (eager calls) are timed on fewer characters, for a repeat of about 2 x min_seconds.
        chars[name] = min(GENERATE_CHARS, calibrate(run, 2 * min_seconds))
        log(f"  {name}: max |diff| {errors[name]:.1e}, {chars[name]} chars per repeat")
    rates = interleave(runs, chars, 1, repeats, "chars")
    valid = {name: rates[name] for name in runs if errors[name] <= STATE_TOLERANCE}

    predict = generator(Stepper(explicit, stateful=False, how="predict"))
    predict(1)
    done, seconds = predict(PREDICT_CHARS)
    log(f"  explicit_state/predict: {done / seconds:,.1f} chars/s")
    return {**report(valid, "chars"), "invalid": {name: rates[name] for name in runs if name not in valid},
            "state_error": errors, "chars_per_repeat": chars,
            "predict_rate": done / seconds, "predict_chars": done}


def bench_bulk(repeats: int, min_seconds: float) -> dict:
    model = char_model(None, W1.seq_len, stateful=False)
    ids = np.random.default_rng(SEED).integers(0, W1.vocab, (BULK_BATCH, W1.seq_len))
    x = np.eye(W1.vocab, dtype=np.float32)[ids]

    def calls(step: Callable[[], object]) -> Runner:
        def work(n: int) -> None:
            for _ in range(n):
                step()
        return clocked(work)

    runs = {
        "predict_on_batch": calls(lambda: model.predict_on_batch(x)),
        "call": calls(lambda: to_numpy(model(x, training=False))),
    }
    log("W6-bulk: warm-up")
    for run in runs.values():
        run(WARMUP_CALLS)
    return report(measure(runs, BULK_BATCH * W1.seq_len, repeats, min_seconds, "tokens"), "tokens")


# ---------------------------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", required=True, choices=WORKLOADS)
    parser.add_argument("--backend", choices=BACKENDS, help="sets KERAS_BACKEND (default: KERAS_BACKEND)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=1.0, help="per repeat (W6-gen: 500 chars, or 2 x this)")
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    out = reserve_stdout()
    backend = choose_backend(args.backend)
    threading = limit_threads(backend, args.threads)

    import keras

    keras.utils.set_random_seed(SEED)
    log(f"keras {keras.__version__}, backend {backend}, threads {threading}")
    if args.workload == "W6-gen":
        result = bench_generation(args.repeats, args.min_seconds)
    elif args.workload == "W6-bulk":
        result = bench_bulk(args.repeats, args.min_seconds)
    else:
        result = bench_training(TRAINING[args.workload], args.repeats, args.min_seconds)
    record = {"contender": f"keras-{backend}", "workload": args.workload, **result,
              "median": statistics.median(result["rates"]), "versions": versions(backend),
              "threading": threading, "repeats": args.repeats, "min_seconds": args.min_seconds,
              "load_average_at_start": load}
    out.write(json.dumps(record) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
