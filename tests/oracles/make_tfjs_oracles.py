"""Write tests/data/oracle_{faces,facemesh,faceres,emotion}.npz: the TF.js face models run by other runtimes.

Why: ``tlgan.extractors.tfjs`` re-implements a TF.js graph executor; its
results must agree with independent runtimes on the same inputs.

- facemesh: MediaPipe's own ``face_landmark.tflite`` (same network, TFLite
  format) through the LiteRT interpreter, on the exact 192x192 inputs that
  ``FaceMesh`` prepares: the first pass, and the whole two-pass pipeline with
  the TFLite net swapped in (so the second-pass crops come from TFLite's own
  first-pass landmarks). The faces are run upright and upside down, so the
  face flags span 0..1 instead of all being ~1. The TFLite face flag is a logit; the TF.js graph
  ends in a sigmoid, so the fixture stores sigmoid(logit).
- faceres and emotion: the official TF.js runtime (``@tensorflow/tfjs``, cpu
  backend) in Node, loading the same ``.json`` + ``.bin`` from memory, on the
  inputs that ``FaceRes.preprocess`` / ``HumanEmotion.preprocess`` give.

The faces themselves are stored too (uint8, small), so the fixture checks the
executor exactly even if the generator's float rounding drifts on another
machine; the tests check that the seed still regenerates them.

Needs ``pip install ai-edge-litert`` (not a tlgan dependency), Node.js with
npm, and ``tlgan models fetch faceres facemesh human-emotion facemesh-tflite``.
The script runs ``npm install @tensorflow/tfjs@4.22.0`` in ``--node-dir``
(default /tmp/tlgan-tfjs-oracle) when it is not there yet. Run from the
repository root: ``python tests/oracles/make_tfjs_oracles.py``.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch
from ai_edge_litert.interpreter import Interpreter

from tlgan import weights
from tlgan.extractors.human import FaceMesh, FaceRes, HumanEmotion
from tlgan.generators import load_generator

GENERATOR, SEED, N = "digiface-dcgan", 0, 8
TFJS_VERSION = "4.22.0"  # the version @vladmandic/human 3.3.6 bundles
DATA = Path(__file__).resolve().parents[1] / "data"

NODE_SCRIPT = r"""
// usage: node run.js MODEL.json INPUT.f32 N,H,W,C OUTDIR OUTPUT_NAME...
const tf = require('@tensorflow/tfjs');
const fs = require('fs');
const path = require('path');
async function main() {
  const [jsonPath, inputPath, shapeArg, outDir, ...outputs] = process.argv.slice(2);
  await tf.setBackend('cpu');
  const spec = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
  const specs = [], shards = [];
  for (const group of spec.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) shards.push(fs.readFileSync(path.join(path.dirname(jsonPath), p)));
  }
  const all = Buffer.concat(shards);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const model = await tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: spec.modelTopology, weightSpecs: specs, weightData, format: spec.format,
    generatedBy: spec.generatedBy, convertedBy: spec.convertedBy, signature: spec.signature,
    userDefinedMetadata: spec.userDefinedMetadata}));
  const raw = fs.readFileSync(inputPath);
  const x = tf.tensor(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4),
                      shapeArg.split(',').map(Number));
  let res = model.execute(x, outputs);
  if (!Array.isArray(res)) res = [res];
  for (let i = 0; i < outputs.length; i++) {
    const data = await res[i].data();
    fs.writeFileSync(path.join(outDir, i + '.f32'), Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    fs.writeFileSync(path.join(outDir, i + '.shape'), res[i].shape.join(','));
  }
  console.log('tfjs', tf.version.tfjs, 'backend', tf.getBackend());
}
main().catch((e) => { console.error(e); process.exit(1); });
"""


def tfjs_run(node_dir: Path, json_path: Path, x: np.ndarray, outputs: list[str]) -> list[np.ndarray]:
    """Run a TF.js graph on an NHWC float32 batch in Node; one array per requested output."""
    with tempfile.TemporaryDirectory(prefix="tlgan-tfjs-") as tmp:
        t = Path(tmp)
        (node_dir / "run.js").write_text(NODE_SCRIPT)
        np.ascontiguousarray(x, dtype="<f4").tofile(t / "x.f32")
        cmd = ["node", str(node_dir / "run.js"), str(json_path), str(t / "x.f32"),
               ",".join(map(str, x.shape)), str(t), *outputs]
        proc = subprocess.run(cmd, cwd=node_dir, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"node failed: {proc.stderr[-2000:]}")
        print(proc.stdout.strip().splitlines()[-1])
        return [np.fromfile(t / f"{i}.f32", "<f4").reshape([int(s) for s in (t / f"{i}.shape").read_text().split(",")])
                for i in range(len(outputs))]


def mesh_inputs(images: torch.Tensor) -> torch.Tensor:
    """The faces, then the same faces upside down: these give face flags well below 1 too."""
    return torch.cat([images, images.rot90(2, (1, 2))])


def tflite_mesh() -> tuple[Interpreter, int, int, int]:
    interp = Interpreter(model_path=str(weights.path_of("facemesh-tflite", "face_landmark.tflite")))
    interp.allocate_tensors()
    outs = {d["name"]: d["index"] for d in interp.get_output_details()}
    return interp, interp.get_input_details()[0]["index"], outs["conv2d_21"], outs["conv2d_31"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--node-dir", type=Path, default=Path(tempfile.gettempdir()) / "tlgan-tfjs-oracle")
    args = ap.parse_args()
    node_dir: Path = args.node_dir
    if not (node_dir / "node_modules" / "@tensorflow" / "tfjs").exists():
        node_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "init", "-y"], cwd=node_dir, check=True, capture_output=True)
        subprocess.run(["npm", "install", f"@tensorflow/tfjs@{TFJS_VERSION}"], cwd=node_dir, check=True)

    g = load_generator(GENERATOR, device="cpu")
    images = g.render(g.sample(N, seed=SEED))
    np.savez_compressed(DATA / "oracle_faces.npz", images=images.numpy(), generator=GENERATOR, seed=SEED)

    # Face mesh: TFLite on the same 192x192 inputs, first pass and whole pipeline.
    interp, inp, mesh_out, flag_out = tflite_mesh()

    def tflite_net(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lms, flags = [], []
        for face in x.permute(0, 2, 3, 1).numpy():  # the TFLite model's batch is fixed at 1
            interp.set_tensor(inp, np.ascontiguousarray(face[None], dtype=np.float32))
            interp.invoke()
            lms.append(interp.get_tensor(mesh_out).reshape(468, 3).copy())
            flags.append(interp.get_tensor(flag_out).reshape(()).copy())
        return torch.from_numpy(np.stack(lms)), torch.sigmoid(torch.from_numpy(np.stack(flags)))

    mesh = FaceMesh("cpu")
    mesh.net = tflite_net  # type: ignore[method-assign]
    mesh_images = mesh_inputs(images)
    first_lm, first_prob = tflite_net(mesh.first_pass_input(mesh_images)[0])
    final = mesh(mesh_images)
    np.savez_compressed(DATA / "oracle_facemesh.npz", first_landmarks=first_lm.numpy(),
                        first_prob=first_prob.numpy(), landmarks=final.landmarks.numpy(),
                        face_prob=final.face_prob.numpy())

    # faceres and emotion: the official TF.js runtime.
    res = FaceRes("cpu")
    names = ["gender_pred/Sigmoid", "age_pred/Softmax", "global_pooling/Mean"]
    male, age, desc = tfjs_run(node_dir, weights.path_of("faceres", "faceres.json"),
                               res.preprocess(images).permute(0, 2, 3, 1).numpy(), names)
    np.savez_compressed(DATA / "oracle_faceres.npz", male=male[:, 0], age_probs=age, descriptor=desc)

    emo = HumanEmotion("cpu")
    (probs,) = tfjs_run(node_dir, weights.path_of("human-emotion", "emotion.json"),
                        emo.preprocess(images).permute(0, 2, 3, 1).numpy(), ["Identity"])
    np.savez_compressed(DATA / "oracle_emotion.npz", probs=probs)
    for name in ("faces", "facemesh", "faceres", "emotion"):
        p = DATA / f"oracle_{name}.npz"
        print(f"wrote {p} ({p.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
