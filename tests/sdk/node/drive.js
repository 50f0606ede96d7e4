// Drives the ims server with the real Tencent Cloud Node SDK.
// Reads one job as JSON on stdin (endpoint, secret_id, secret_key, version, action, method,
// sign, language, params, protocol: "http" or absent for the SDK's default, https) and prints
// {"results": [{"ok": ...} | {"error": {...}}]}. A CA to trust comes from NODE_EXTRA_CA_CERTS.
const tencentcloud = require("tencentcloud-sdk-nodejs-ims");

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const job = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const version = "v" + job.version.replace(/-/g, "");
  const Client = tencentcloud.ims[version].Client;
  const profile = {
    httpProfile: { endpoint: job.endpoint, reqMethod: job.method || "POST", reqTimeout: 30 },
    signMethod: job.sign || "TC3-HMAC-SHA256",
  };
  if (job.protocol) profile.httpProfile.protocol = job.protocol + "://";
  if (job.language) profile.language = job.language;
  const client = new Client({
    credential: { secretId: job.secret_id, secretKey: job.secret_key },
    region: "ap-guangzhou",
    profile,
  });
  const action = job.action || "ImageModeration";
  const results = [];
  for (let i = 0; i < (job.count || 1); i++) {
    try {
      results.push({ ok: await client[action](job.params || {}) });
    } catch (e) {
      results.push({ error: { code: e.code || "", message: e.message, request_id: e.requestId || "" } });
    }
  }
  process.stdout.write(JSON.stringify({ results }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
