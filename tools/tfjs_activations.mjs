// Runs a TF.js graph model with TensorFlow.js itself (the CPU backend, in Node.js) and writes
// the values of some of its nodes: the reference that poselit's TF.js import is checked
// against (tests/test_backbone_weights.py). Needs Node.js and, in NODE_PATH or a node_modules
// folder above this file, @tensorflow/tfjs-core, -converter and -backend-cpu (version 4):
//
//   npm install --prefix /tmp/tfjs @tensorflow/tfjs-core@4 @tensorflow/tfjs-converter@4 @tensorflow/tfjs-backend-cpu@4
//   NODE_PATH=/tmp/tfjs/node_modules node tools/tfjs_activations.mjs model.json input.raw H W out.bin NODE [NODE ...]
//
// input.raw: H*W*3 bytes (RGB, row-major), given to the graph as its int32 input [1, H, W, 3].
// out.bin: for each node in turn, its float32 values (NHWC, little-endian), and on stdout
// one JSON line per node with its name and shape.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";

const require = createRequire(join(process.cwd(), "noop.js"));
const tf = require("@tensorflow/tfjs-core");
require("@tensorflow/tfjs-backend-cpu");
const converter = require("@tensorflow/tfjs-converter");

const [modelPath, inputPath, height, width, outPath, ...nodes] = process.argv.slice(2);
const model = JSON.parse(readFileSync(modelPath, "utf8"));
const handler = {
  load: async () => {
    const specs = [];
    const buffers = [];
    for (const group of model.weightsManifest) {
      specs.push(...group.weights);
      for (const path of group.paths) buffers.push(readFileSync(join(dirname(modelPath), path)));
    }
    const data = Buffer.concat(buffers);
    return {
      modelTopology: model.modelTopology,
      weightSpecs: specs,
      weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
      format: model.format, generatedBy: model.generatedBy, convertedBy: model.convertedBy,
      signature: model.signature, userDefinedMetadata: model.userDefinedMetadata,
    };
  },
};
await tf.setBackend("cpu");
const graph = await converter.loadGraphModel(handler);
const pixels = Int32Array.from(readFileSync(inputPath));
const input = tf.tensor4d(pixels, [1, Number(height), Number(width), 3], "int32");
const outputs = graph.execute(input, nodes);
const chunks = [];
for (const [index, tensor] of (Array.isArray(outputs) ? outputs : [outputs]).entries()) {
  const values = tensor.dataSync();
  chunks.push(Buffer.from(Float32Array.from(values).buffer));
  console.log(JSON.stringify({ node: nodes[index], shape: tensor.shape }));
}
writeFileSync(outPath, Buffer.concat(chunks));
