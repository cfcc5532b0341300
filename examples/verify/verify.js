// Check X-Sms-Sessions-Signature in your service: pass verify() the raw body (a Buffer, e.g. from
// express.raw({ type: "*/*" })), never a re-serialised JSON object.
const crypto = require("node:crypto");

function verify(secret, header, method, pathAndQuery, body, tolerance = 300) {
  const fields = Object.fromEntries((header || "").split(",").map((part) => part.split("=", 2)));
  if (!/^\d+$/.test(fields.t ?? "") || Math.abs(Date.now() / 1000 - Number(fields.t)) > tolerance) return false;
  const expected = crypto.createHmac("sha256", secret)
    .update(`${fields.t}.${method}.${pathAndQuery}.`).update(body).digest();
  const given = Buffer.from(fields.v1 ?? "", "hex");
  return given.length === expected.length && crypto.timingSafeEqual(given, expected);
}

module.exports = { verify };
