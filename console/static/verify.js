// credgate receipt verifier: checks a receipt (credgate-receipt/v1) in the
// browser against a pinned log key, link by link as `credgate verify`
// does (evidence.VerifyReceipt): the record hash from body and salt, the
// leaf hash from the record, the checkpoint note's Ed25519 signature
// (golang.org/x/mod/sumdb/note format) and the RFC 9162 inclusion proof
// from the leaf to the signed root. Only WebCrypto is used.
"use strict";

const credgateVerify = (() => {
  const enc = new TextEncoder();

  function b64(s, what) {
    if (typeof s !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) {
      throw new Error(what + " is not base64");
    }
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function hex(b) {
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  function concat(...parts) {
    const n = parts.reduce((a, p) => a + p.length, 0);
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of parts) { out.set(p, o); o += p.length; }
    return out;
  }

  async function sha256(...parts) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", concat(...parts)));
  }

  function equal(a, b) {
    if (a.length !== b.length) return false;
    let d = 0;
    for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
    return d === 0;
  }

  // leafTime is Go's r.At.UTC().Truncate(time.Microsecond) formatted
  // "2006-01-02T15:04:05.000000Z".
  function leafTime(at) {
    const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(at);
    if (!m) throw new Error("record.at is not a UTC RFC 3339 time");
    return m[1] + "." + (m[2] || "").padEnd(9, "0").slice(0, 6) + "Z";
  }

  function leafData(rec, recordHash) {
    return enc.encode("credgate-evidence-v1\nid " + rec.id + "\nkind " + rec.kind + "\npartner " + rec.partner +
      "\nat " + leafTime(rec.at) + "\nhash " + recordHash + "\n");
  }

  // parseKey reads a note verifier key: name+hash+base64(0x01 ‖ key).
  async function parseKey(vkey) {
    // The name has no "+"; the base64 key may.
    const m = /^([^+\s]+)\+([0-9a-f]{8})\+(\S+)$/.exec(vkey.trim());
    if (!m) throw new Error("the pinned key is not a verifier key (name+hash+key)");
    const parts = [m[1], m[2], m[3]];
    const raw = b64(parts[2], "the pinned key");
    if (raw.length !== 33 || raw[0] !== 1) throw new Error("the pinned key is not an Ed25519 verifier key");
    const h = await sha256(enc.encode(parts[0] + "\n"), raw);
    if (hex(h.slice(0, 4)) !== parts[1]) throw new Error("the pinned key's hash does not match its name and key");
    const key = await crypto.subtle.importKey("raw", raw.slice(1), { name: "Ed25519" }, false, ["verify"]);
    return { name: parts[0], hash: parts[1], key };
  }

  // openNote checks the note's signature by the pinned key and returns
  // its text.
  async function openNote(note, pinned) {
    const split = note.lastIndexOf("\n\n");
    if (split < 0) throw new Error("the checkpoint is not a signed note");
    const text = note.slice(0, split + 1);
    const sigs = note.slice(split + 2).split("\n").filter((l) => l !== "");
    for (const line of sigs) {
      const m = /^\u2014 (\S+) (\S+)$/.exec(line);
      if (!m) throw new Error("malformed signature line in the checkpoint");
      if (m[1] !== pinned.name) continue;
      const sig = b64(m[2], "a checkpoint signature");
      if (sig.length !== 68 || hex(sig.slice(0, 4)) !== pinned.hash) continue;
      if (await crypto.subtle.verify({ name: "Ed25519" }, pinned.key, sig.slice(4), enc.encode(text))) {
        return text;
      }
      throw new Error("the checkpoint's signature by the pinned key does not verify");
    }
    throw new Error("the checkpoint is not signed by the pinned key");
  }

  // RFC 9162 §2.1.3.2.
  async function rootFromInclusion(index, size, leaf, proof) {
    let fn = BigInt(index), sn = BigInt(size) - 1n, r = leaf;
    for (const p of proof) {
      if (sn === 0n) throw new Error("the inclusion proof is too long");
      if ((fn & 1n) === 1n || fn === sn) {
        r = await sha256(new Uint8Array([1]), p, r);
        if ((fn & 1n) === 0n) {
          while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
        }
      } else {
        r = await sha256(new Uint8Array([1]), r, p);
      }
      fn >>= 1n; sn >>= 1n;
    }
    if (sn !== 0n) throw new Error("the inclusion proof is too short");
    return r;
  }

  async function verify(receiptText, pinnedKey) {
    let rc;
    try { rc = JSON.parse(receiptText); } catch (e) { throw new Error("not JSON: " + e.message); }
    if (!rc || rc.format !== "credgate-receipt/v1") throw new Error("not a credgate-receipt/v1 receipt");
    const rec = rc.record || {};
    const body = b64(rec.body, "record.body"), salt = b64(rec.salt, "record.salt");
    // An erased record (body and salt deleted on purpose) keeps its record
    // hash: the rest of the chain proves that hash in the signed log, as
    // credgate verify does, and the answer says the body is gone.
    const erased = body.length === 0 && salt.length === 0;
    if (erased && !/^[0-9a-f]{64}$/.test(String(rc.record_hash))) throw new Error("an erased record's receipt without its record hash");
    const recordHash = erased ? rc.record_hash : hex(await sha256(salt, body));
    if (recordHash !== rc.record_hash) throw new Error("record hash mismatch: the body or salt was altered");
    const leaf = await sha256(new Uint8Array([0]), leafData(rec, recordHash));
    if (rc.leaf_hash && hex(leaf) !== rc.leaf_hash) throw new Error("leaf hash mismatch: the record's id, kind, partner or time was altered");
    const pinned = await parseKey(pinnedKey);
    const text = await openNote(String(rc.checkpoint || ""), pinned);
    const lines = text.split("\n");
    if (lines.length < 4 || !/^[1-9][0-9]*$|^0$/.test(lines[1])) throw new Error("malformed checkpoint");
    const size = BigInt(lines[1]);
    const root = b64(lines[2], "the checkpoint's root");
    if (BigInt(rc.tree_size) !== size) throw new Error("tree_size is not the checkpoint's size");
    if (!(BigInt(rc.leaf_index) < size)) throw new Error("the leaf is beyond the checkpoint");
    const proof = (rc.inclusion_proof || []).map((p, i) => b64(p, "inclusion_proof[" + i + "]"));
    const got = await rootFromInclusion(rc.leaf_index, rc.tree_size, leaf, proof);
    if (!equal(got, root)) throw new Error("the inclusion proof does not lead to the signed root");
    return { origin: lines[0], size: lines[1], index: rc.leaf_index, id: rec.id, kind: rec.kind, key: pinned.name, erased };
  }

  return { verify };
})();

document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("verify-receipt");
  if (!button) return;
  const out = document.getElementById("verify-result");
  const file = document.getElementById("receipt-file");
  const area = document.getElementById("receipt");
  file.addEventListener("change", async () => {
    if (file.files.length) area.value = await file.files[0].text();
  });
  button.addEventListener("click", async () => {
    out.className = "";
    out.textContent = "…";
    if (!window.crypto || !crypto.subtle) {
      out.className = "bad";
      out.textContent = out.dataset.nojs;
      return;
    }
    try {
      const v = await credgateVerify.verify(area.value, document.getElementById("pinned-key").value);
      out.className = v.erased ? "ok erased" : "ok";
      out.textContent = (v.erased ? out.dataset.erased : out.dataset.ok) + ": " + v.kind + " " + v.id + " · #" + v.index + " / " + v.size + " · " + v.origin + " · " + v.key;
    } catch (e) {
      out.className = "bad";
      out.textContent = out.dataset.bad + ": " + e.message;
    }
  });
});
