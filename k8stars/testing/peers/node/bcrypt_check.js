// Checks TAccount password hashes the way a Node console does: bcrypt (bcrypt-nodejs, pure JS, which accepts only
// the $2a$ revision) of the hex SHA-1 of the password.
// stdin: a JSON list of {password, hash}; stdout: a JSON list of {ok: bool} or {error: "..."} (one per input).
"use strict";
const crypto = require("crypto");
const bcrypt = require("bcrypt-nodejs");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const results = JSON.parse(input).map(({ password, hash }) => {
    const digest = crypto.createHash("sha1").update(password, "utf8").digest("hex");
    try {
      return { ok: bcrypt.compareSync(digest, hash) };
    } catch (e) {
      return { error: String(e && e.message ? e.message : e) };
    }
  });
  process.stdout.write(JSON.stringify(results) + "\n");
});
