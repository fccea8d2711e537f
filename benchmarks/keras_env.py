"""Virtual environments with Keras 3 on a CPU backend, for bench_keras.py.

Keras, TensorFlow and JAX are never dependencies of lstmkit: the Keras benchmark runs in its own
virtual environment, one per backend, at benchmarks/.venvs/keras-<backend>, with pinned versions.

    python benchmarks/keras_env.py tensorflow jax      # create both (no-op when already there)

From another script:

    from keras_env import ensure_env
    python = ensure_env("jax")                          # path of the environment's python
"""

import pathlib
import subprocess
import sys

VENVS = pathlib.Path(__file__).resolve().parent / ".venvs"

# Pinned versions; the marker file records them, so changing a pin reinstalls.
KERAS = "keras==3.15.1"
NUMPY = "numpy==2.4.6"
BACKEND_PACKAGES = {
    "tensorflow": ["tensorflow-cpu==2.21.0"],
    "jax": ["jax[cpu]==0.10.2"],
}
MARKER = "installed.txt"


def requirements(backend: str) -> list[str]:
    """The pinned packages of one backend's environment."""
    if backend not in BACKEND_PACKAGES:
        raise ValueError(f"unknown backend {backend!r}; choose from {sorted(BACKEND_PACKAGES)}")
    return [KERAS, *BACKEND_PACKAGES[backend], NUMPY]


def venv_python(venv: pathlib.Path) -> pathlib.Path:
    """The python executable inside a virtual environment."""
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def run(command: list[str]) -> None:
    """Run a command, echoing it first; raise if it fails."""
    print("+", " ".join(str(part) for part in command), flush=True)
    subprocess.run(command, check=True)


def ensure_env(backend: str) -> pathlib.Path:
    """Create (if missing) the Keras environment of `backend` and return its python executable."""
    packages = requirements(backend)
    venv = VENVS / f"keras-{backend}"
    python = venv_python(venv)
    marker = venv / MARKER
    wanted = "\n".join(packages) + "\n"
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        print(f"keras-{backend}: ready at {venv}", flush=True)
        return python

    if not python.exists():
        print(f"keras-{backend}: creating the virtual environment {venv}", flush=True)
        venv.parent.mkdir(parents=True, exist_ok=True)
        run([sys.executable, "-m", "venv", str(venv)])
    print(f"keras-{backend}: installing {' '.join(packages)}", flush=True)
    run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    run([str(python), "-m", "pip", "install", "--quiet", *packages])
    marker.write_text(wanted)   # written last: only a complete install counts as ready
    print(f"keras-{backend}: ready at {venv}", flush=True)
    return python


def main(argv: list[str]) -> None:
    backends = argv or sorted(BACKEND_PACKAGES)
    for backend in backends:
        ensure_env(backend)


if __name__ == "__main__":
    main(sys.argv[1:])
