"""Train a character-level LSTM on Macbeth and generate text from it, with the public API only.

    python examples/textgen_macbeth.py --max-time 120

The dataset is found through LSTMKIT_DATA_DIR (an offline copy) or downloaded once into the cache.
"""

import argparse

from lstmkit import textgen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/example-macbeth")
    parser.add_argument("--max-time", type=float, default=120.0, help="seconds of training")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    gen = textgen.train(data="macbeth", out=args.out, overwrite=True, max_time=args.max_time, seed=args.seed)
    val = gen.metrics["val"]
    print(f"validation: {val['bits_per_char']:.3f} bits per character (perplexity {val['perplexity']:.2f})")

    # the run folder reloads without pickle: config.json, vocab.json, model.safetensors
    reloaded = textgen.load(args.out)
    for temperature in (0.5, 1.0):
        print(f"\n--- temperature {temperature} ---")
        print("Macb." + reloaded.sample(prime="Macb.", length=400, temperature=temperature, seed=args.seed))


if __name__ == "__main__":
    main()
