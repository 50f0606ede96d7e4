// Reference scores: nsfwjs's own classify() (its own pre-processing) on given pixels.
// stdin: [{"width", "height", "rgb": base64 of width*height*3 bytes}, ...]
// stdout: [[Drawing, Hentai, Neutral, Porn, Sexy], ...]
// TensorFlow.js greets on standard output; keep standard output for the answer only.
console.log = console.info = console.debug = (...args) => console.error(...args);
const tf = require("@tensorflow/tfjs");
const nsfwjs = require("nsfwjs");
const CLASSES = ["Drawing", "Hentai", "Neutral", "Porn", "Sexy"];

(async () => {
  await tf.setBackend("cpu");
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const images = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const model = await nsfwjs.load("MobileNetV2");
  const out = [];
  for (const image of images) {
    const pixels = new Int32Array(Buffer.from(image.rgb, "base64"));
    const tensor = tf.tensor3d(pixels, [image.height, image.width, 3], "int32");
    const predictions = await model.classify(tensor, 5);
    tensor.dispose();
    out.push(CLASSES.map((c) => predictions.find((p) => p.className === c).probability));
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
