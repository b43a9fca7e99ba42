#!/usr/bin/env node
// k8stars interop peer: the real @tars/stream codec driven by JSON.
//
//   node codec.js encode|decode|bench  < request.json  > reply.json
//
// The JSON protocol is shared with the Go peer (`tarspeer codec ...`); see
// k8stars/testing/peers/README.md.  Values are written/read with @tars/stream's own
// TarsOutputStream / TarsInputStream, List, Map and struct machinery, so the bytes are
// exactly what a @tars/rpc service would put on the wire.
'use strict';

const T = require('@tars/stream');

const INT_RANGES = {
  byte: [-128, 127],
  short: [-32768, 32767],
  int: [-2147483648, 2147483647],
};
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function fail(msg) {
  throw new Error(msg);
}

function checkInt(kind, v) {
  const [lo, hi] = INT_RANGES[kind];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
    fail(`${kind} value out of range or not an integer: ${JSON.stringify(v)}`);
  }
  return v;
}

function checkLong(v) {
  let s;
  if (typeof v === 'string') s = v.trim();
  else if (typeof v === 'number' && Number.isSafeInteger(v)) s = String(v);
  else fail(`long value must be a decimal string: ${JSON.stringify(v)}`);
  if (!/^-?\d+$/.test(s)) fail(`long value is not a decimal integer: ${JSON.stringify(v)}`);
  const b = BigInt(s);
  if (b < INT64_MIN || b > INT64_MAX) fail(`long value out of int64 range: ${s}`);
  return b.toString();
}

function checkNumber(v) {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(`float/double value must be a finite number: ${JSON.stringify(v)}`);
  return v;
}

function checkHex(v) {
  if (typeof v !== 'string' || v.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(v)) {
    fail(`bytes value must be an even-length hex string: ${JSON.stringify(v)}`);
  }
  return v;
}

// A "handler" knows, for one JSON type descriptor, the @tars/stream prototype used inside
// containers (proto + flag), how to write/read a field, and how to convert JSON <-> the
// native @tars/stream representation.
function scalar(proto, flag, write, read, toNative, fromNative, def) {
  return { proto, flag, write, read, toNative, fromNative, defaultNative: () => def };
}

function makeType(t) {
  if (typeof t === 'string') {
    switch (t) {
      case 'bool':
        return scalar(T.Boolean, 0,
          (os, tag, v) => os.writeBoolean(tag, v),
          (is, tag, req) => is.readBoolean(tag, req, false),
          (v) => { if (typeof v !== 'boolean') fail(`bool value must be true/false: ${JSON.stringify(v)}`); return v; },
          (v) => !!v, false);
      case 'byte':
        return scalar(T.Int8, 0,
          (os, tag, v) => os.writeInt8(tag, v),
          (is, tag, req) => is.readInt8(tag, req, 0),
          (v) => checkInt('byte', v), (v) => v, 0);
      case 'short':
        return scalar(T.Int16, 0,
          (os, tag, v) => os.writeInt16(tag, v),
          (is, tag, req) => is.readInt16(tag, req, 0),
          (v) => checkInt('short', v), (v) => v, 0);
      case 'int':
        return scalar(T.Int32, 0,
          (os, tag, v) => os.writeInt32(tag, v),
          (is, tag, req) => is.readInt32(tag, req, 0),
          (v) => checkInt('int', v), (v) => v, 0);
      case 'long':
        // bString=true: @tars/stream's exact int64 path (big.js), values travel as strings.
        return scalar(T.Int64, 1,
          (os, tag, v) => os.writeInt64(tag, v, true),
          (is, tag, req) => is.readInt64(tag, req, '0', true),
          checkLong, (v) => String(v), '0');
      case 'float':
        return scalar(T.Float, 0,
          (os, tag, v) => os.writeFloat(tag, v),
          (is, tag, req) => is.readFloat(tag, req, 0),
          checkNumber, (v) => v, 0);
      case 'double':
        return scalar(T.Double, 0,
          (os, tag, v) => os.writeDouble(tag, v),
          (is, tag, req) => is.readDouble(tag, req, 0),
          checkNumber, (v) => v, 0);
      case 'string':
        return scalar(T.String, 0,
          (os, tag, v) => os.writeString(tag, v),
          (is, tag, req) => is.readString(tag, req, ''),
          (v) => { if (typeof v !== 'string') fail(`string value must be a JSON string: ${JSON.stringify(v)}`); return v; },
          (v) => v, '');
      case 'bytes':
        return {
          proto: T.BinBuffer,
          flag: 0,
          write: (os, tag, v) => os.writeBytes(tag, v),
          read: (is, tag, req) => is.readBytes(tag, req, T.BinBuffer),
          toNative: (v) => new T.BinBuffer(Buffer.from(checkHex(v), 'hex')),
          fromNative: (v) => (v.length ? v.toNodeBuffer().toString('hex') : ''),
          defaultNative: () => new T.BinBuffer(),
        };
      default:
        fail(`unknown type ${JSON.stringify(t)}`);
    }
  }
  if (t === null || typeof t !== 'object' || Array.isArray(t)) fail(`bad type descriptor ${JSON.stringify(t)}`);
  if ('vector' in t) return makeVector(makeType(t.vector));
  if ('map' in t) {
    if (!Array.isArray(t.map) || t.map.length !== 2) fail(`map type must be [KTYPE, VTYPE]: ${JSON.stringify(t)}`);
    return makeMap(makeType(t.map[0]), makeType(t.map[1]));
  }
  if ('struct' in t) return makeStruct(t.struct);
  return fail(`bad type descriptor ${JSON.stringify(t)}`);
}

function makeVector(e) {
  const proto = T.List(e.proto, e.flag);
  return {
    proto,
    flag: 0,
    write: (os, tag, v) => os.writeList(tag, v),
    read: (is, tag, req) => is.readList(tag, req, proto),
    toNative: (v) => {
      if (!Array.isArray(v)) fail(`vector value must be a JSON list: ${JSON.stringify(v)}`);
      const l = T.List(e.proto, e.flag);
      for (const x of v) l.push(e.toNative(x));
      return l;
    },
    fromNative: (l) => l.value.map((x) => e.fromNative(x)),
    defaultNative: () => T.List(e.proto, e.flag),
  };
}

function makeMap(k, v) {
  const proto = T.Map(k.proto, v.proto, k.flag, v.flag);
  const fresh = () => T.Map(k.proto, v.proto, k.flag, v.flag);
  return {
    proto,
    flag: 0,
    write: (os, tag, m) => os.writeMap(tag, m),
    read: (is, tag, req) => is.readMap(tag, req, proto),
    toNative: (pairs) => {
      if (!Array.isArray(pairs)) fail(`map value must be a list of [key, value] pairs: ${JSON.stringify(pairs)}`);
      const m = fresh();
      for (const p of pairs) {
        if (!Array.isArray(p) || p.length !== 2) fail(`map entry must be [key, value]: ${JSON.stringify(p)}`);
        m.insert(k.toNative(p[0]), v.toNative(p[1]));
      }
      return m;
    },
    fromNative: (m) => {
      const out = [];
      // The second argument keeps int64 keys as strings (HeroMap otherwise Number()s them).
      m.forEach((key, val) => { out.push([k.fromNative(key), v.fromNative(val)]); }, k.flag);
      return out;
    },
    defaultNative: fresh,
  };
}

let structSeq = 0;

function makeStruct(fields) {
  if (!Array.isArray(fields)) fail(`struct type must be a list of {tag, type}: ${JSON.stringify(fields)}`);
  const fts = fields.map((f) => ({ tag: checkTag(f.tag), h: makeType(f.type), require: f.require !== false }));
  for (let i = 1; i < fts.length; i++) {
    if (fts[i].tag <= fts[i - 1].tag) fail('struct fields must be in ascending tag order');
  }
  const name = `k8stars.Dyn${++structSeq}`;
  // Shaped like a tars2node-generated struct class.
  function S() {
    this.v = fts.map((f) => f.h.defaultNative());
    this._classname = name;
  }
  S._classname = name;
  S._write = (os, tag, value) => os.writeStruct(tag, value);
  S._read = (is, tag, def) => is.readStruct(tag, true, def);
  S._readFrom = (is) => {
    const tmp = new S();
    tmp.v = fts.map((f) => f.h.read(is, f.tag, f.require));
    return tmp;
  };
  S.new = () => new S();
  S.create = (is) => S._readFrom(is);
  S.prototype._writeTo = function (os) {
    fts.forEach((f, i) => f.h.write(os, f.tag, this.v[i]));
  };
  S.prototype._genKey = function () {
    return JSON.stringify(fts.map((f, i) => f.h.fromNative(this.v[i])));
  };
  S.prototype._equal = function (other) {
    return this._genKey() === other._genKey();
  };
  return {
    proto: S,
    flag: 0,
    write: (os, tag, v) => os.writeStruct(tag, v),
    read: (is, tag, req) => is.readStruct(tag, req, S),
    toNative: (vals) => {
      if (!Array.isArray(vals) || vals.length !== fts.length) {
        fail(`struct value must be a list of ${fts.length} field values: ${JSON.stringify(vals)}`);
      }
      const o = new S();
      o.v = fts.map((f, i) => f.h.toNative(vals[i]));
      return o;
    },
    fromNative: (o) => fts.map((f, i) => f.h.fromNative(o.v[i])),
    defaultNative: () => new S(),
  };
}

function checkTag(tag) {
  if (!Number.isInteger(tag) || tag < 0 || tag > 255) fail(`tag must be an integer 0..255: ${JSON.stringify(tag)}`);
  return tag;
}

function fieldHandlers(fields) {
  if (!Array.isArray(fields)) fail('"fields" must be a list');
  return fields.map((f) => ({ tag: checkTag(f.tag), h: makeType(f.type), require: f.require !== false, f }));
}

function encodeCase(c) {
  const os = new T.TarsOutputStream();
  for (const { tag, h, f } of fieldHandlers(c.fields)) {
    h.write(os, tag, h.toNative(f.value));
  }
  const bb = os.getBinBuffer();
  return bb.length ? bb.toNodeBuffer().toString('hex') : '';
}

function decodeCase(c) {
  const fh = fieldHandlers(c.fields);
  const bb = new T.BinBuffer(Buffer.from(checkHex(c.hex), 'hex'));
  const is = new T.TarsInputStream(bb);
  return fh.map(({ tag, h, require }) => h.fromNative(h.read(is, tag, require)));
}

function errText(e) {
  if (e && e.message) return `${e.constructor && e.constructor.name ? e.constructor.name + ': ' : ''}${e.message}`;
  return String(e);
}

function doEncode(req) {
  const cases = req.cases;
  if (!Array.isArray(cases)) fail('"cases" must be a list');
  return { hex: cases.map(encodeCase) };
}

function doDecode(req) {
  const cases = req.cases;
  if (!Array.isArray(cases)) fail('"cases" must be a list');
  return {
    values: cases.map((c) => {
      try {
        return decodeCase(c);
      } catch (e) {
        return { error: errText(e) };
      }
    }),
  };
}

// ---------------------------------------------------------------- bench
// calls per second of wall time and per second of CPU time (the whole process: V8's GC threads too)
function timed(seconds, fn) {
  const deadline = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  const start = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  let n = 0;
  let now = start;
  do {
    for (let i = 0; i < 256; i++) fn();
    n += 256;
    now = process.hrtime.bigint();
  } while (now < deadline);
  const used = process.cpuUsage(cpu0);
  const wall = Number(now - start) / 1e9;
  const cpu = (used.user + used.system) / 1e6;
  return [n / wall, n / (cpu > 0 ? cpu : wall)];
}

function benchOne(seconds, encode, decode) {
  const bytes = encode();
  const buf = bytes.toNodeBuffer();
  decode(buf); // sanity check before timing
  const [enc, encCpu] = timed(seconds, encode);
  const [dec, decCpu] = timed(seconds, () => decode(buf));
  return {
    encode_per_s: Math.round(enc),
    decode_per_s: Math.round(dec),
    encode_per_cpu_s: Math.round(encCpu),
    decode_per_cpu_s: Math.round(decCpu),
    bytes: buf.length,
  };
}

function doBench(req) {
  const seconds = Number(req.seconds === undefined ? 1 : req.seconds);
  if (!(seconds > 0 && seconds <= 600)) fail('"seconds" must be in (0, 600]');
  const RequestPacket = require('@tars/rpc/core/rpc-tars/RequestF.js').tars.RequestPacket;
  const EndpointF = require('@tars/registry/EndpointFTars.js').tars.EndpointF;

  const pkt = new RequestPacket();
  pkt.iVersion = 1;
  pkt.cPacketType = 0;
  pkt.iMessageType = 0;
  pkt.iRequestId = 1;
  pkt.sServantName = 'Test.EchoServer.EchoObj';
  pkt.sFuncName = 'echo';
  const body = new T.TarsOutputStream();
  body.writeString(1, 'hello123'); // 10-byte sBuffer: the echo call's `s` parameter
  pkt.sBuffer = body.getBinBuffer();
  pkt.iTimeout = 3000;
  const rp = benchOne(seconds,
    () => { const os = new T.TarsOutputStream(); pkt._writeTo(os); return os.getBinBuffer(); },
    (buf) => RequestPacket._readFrom(new T.TarsInputStream(new T.BinBuffer(buf))));

  // struct EndpointList { 0 require vector<EndpointF> eps; } written as a bare field sequence.
  const EpList = T.List(EndpointF);
  const eps = T.List(EndpointF);
  for (let i = 0; i < 100; i++) {
    const ep = new EndpointF();
    ep.host = '127.0.0.1';
    ep.port = 10000 + i;
    ep.timeout = 60000;
    ep.istcp = 1;
    eps.push(ep);
  }
  const el = benchOne(seconds,
    () => { const os = new T.TarsOutputStream(); os.writeList(0, eps); return os.getBinBuffer(); },
    (buf) => new T.TarsInputStream(new T.BinBuffer(buf)).readList(0, true, EpList));

  return {
    peer: 'node @tars/stream ' + require('@tars/stream/package.json').version,
    seconds_per_loop: seconds,
    request_packet: rp,
    endpoint_list_100: el,
  };
}

// ---------------------------------------------------------------- main
function readStdin() {
  const chunks = [];
  const fs = require('fs');
  const buf = Buffer.alloc(1 << 16);
  for (;;) {
    let n;
    try {
      n = fs.readSync(0, buf, 0, buf.length, null);
    } catch (e) {
      if (e.code === 'EAGAIN') continue;
      if (e.code === 'EOF') break;
      throw e;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString('utf8');
}

function main() {
  const cmd = process.argv[2];
  const handlers = { encode: doEncode, decode: doDecode, bench: doBench };
  if (!handlers[cmd]) {
    process.stderr.write('usage: node codec.js encode|decode|bench < request.json\n');
    process.exit(2);
  }
  let out;
  try {
    const text = readStdin();
    const req = text.trim() ? JSON.parse(text) : {};
    out = handlers[cmd](req);
  } catch (e) {
    process.stderr.write(`codec.js ${cmd}: ${errText(e)}\n`);
    process.exit(1);
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main();
