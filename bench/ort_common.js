// What the ONNX Runtime benchmark scripts (ort_infer.js, ort_generate.js)
// share: onnxruntime-node located through ORT_NODE_PATH (the directory the
// benchmark scripts install it into) or the usual module path, a session on
// the CPU provider, safetensors reading and the median.
'use strict';
const fs = require('fs');
const path = require('path');

function ortModulePath() {
  return process.env.ORT_NODE_PATH ? path.resolve(process.env.ORT_NODE_PATH, 'node_modules', 'onnxruntime-node')
                                   : 'onnxruntime-node';
}

// {ort, version}
function loadOrt() {
  const p = ortModulePath();
  const ort = require(p);
  const version = require(path.join(path.dirname(require.resolve(p)), '..', 'package.json')).version;
  return {ort, version};
}

// A session with every graph optimisation, `threads` threads inside operators, one between them.
function cpuSession(ort, file, threads) {
  return ort.InferenceSession.create(file, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
}

// {name: {dtype, shape, bytes}} from a .safetensors file.
function readSafetensors(file) {
  const buf = fs.readFileSync(file);
  const headerLen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8'));
  const out = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [b, e] = info.data_offsets;
    out[name] = {dtype: info.dtype, shape: info.shape, bytes: buf.subarray(8 + headerLen + b, 8 + headerLen + e)};
  }
  return out;
}

// A tensor's bytes as a typed array of `Type` (copied, so it is aligned).
function typedArray(t, Type) {
  return new Type(t.bytes.buffer.slice(t.bytes.byteOffset, t.bytes.byteOffset + t.bytes.length));
}

function median(v) {
  const s = [...v].sort((x, y) => x - y);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

module.exports = {loadOrt, cpuSession, readSafetensors, typedArray, median};
