#!/usr/bin/env node
// The ONNX Runtime side of bench_infer: forward passes of the RoFormer encoder
// exported to ONNX (bench/torch_infer.py --export-onnx) from the same weights,
// on the same ids, timed with onnxruntime-node's CPU execution provider.
//
//   node bench/ort_infer.js --onnx FILE --inputs DIR/inputs.safetensors --batch B --seq T
//        [--threads N] [--warmup N] [--min-reps N] [--min-seconds S] [--compare FILE]
//
// Prints one JSON line. --compare reads roformer.cpp's last_hidden_state for
// the same case (bench_infer --save-output) and reports the largest absolute
// difference. onnxruntime-node is found as ort_common.js says.
'use strict';
const {loadOrt, cpuSession, readSafetensors, typedArray, median} = require('./ort_common');

function args() {
  const a = {threads: 1, warmup: 1, minReps: 3, minSeconds: 2, batch: 1, seq: 128};
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i += 2) {
    const k = v[i], x = v[i + 1];
    if (x === undefined) throw new Error(`${k} needs a value`);
    if (k === '--onnx') a.onnx = x;
    else if (k === '--inputs') a.inputs = x;
    else if (k === '--compare') a.compare = x;
    else if (k === '--batch') a.batch = Number(x);
    else if (k === '--seq') a.seq = Number(x);
    else if (k === '--threads') a.threads = Number(x);
    else if (k === '--warmup') a.warmup = Number(x);
    else if (k === '--min-reps') a.minReps = Number(x);
    else if (k === '--min-seconds') a.minSeconds = Number(x);
    else throw new Error(`unknown argument ${k}`);
  }
  if (!a.onnx || !a.inputs) throw new Error('--onnx and --inputs are required');
  return a;
}

// The first B rows and T columns of a (rows, cols) int64 tensor.
function sliceInt64(t, B, T) {
  if (t.dtype !== 'I64' || t.shape.length !== 2 || t.shape[0] < B || t.shape[1] < T)
    throw new Error(`inputs: expected int64 (>=${B}, >=${T}), got ${t.dtype} ${JSON.stringify(t.shape)}`);
  const src = typedArray(t, BigInt64Array);
  const out = new BigInt64Array(B * T);
  for (let b = 0; b < B; ++b) out.set(src.subarray(b * t.shape[1], b * t.shape[1] + T), b * T);
  return out;
}

async function main() {
  const a = args();
  const {ort, version} = loadOrt();
  const session = await cpuSession(ort, a.onnx, a.threads);
  const inputs = readSafetensors(a.inputs);
  const feeds = {};
  for (const name of ['input_ids', 'attention_mask', 'token_type_ids'])
    feeds[name] = new ort.Tensor('int64', sliceInt64(inputs[name], a.batch, a.seq), [a.batch, a.seq]);

  const seconds = [];
  let out = null;
  for (let rep = 0; rep < a.warmup || seconds.length < a.minReps || seconds.reduce((x, y) => x + y, 0) < a.minSeconds;
       ++rep) {
    const t0 = process.hrtime.bigint();
    out = (await session.run(feeds)).last_hidden_state;
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (rep >= a.warmup) seconds.push(s);
  }
  let maxDiff = null, maxAbs = 0, sumAbs = 0;
  for (const x of out.data) {
    maxAbs = Math.max(maxAbs, Math.abs(x));
    sumAbs += Math.abs(x);
  }
  if (a.compare) {
    const ours = readSafetensors(a.compare).last_hidden_state;
    const o = typedArray(ours, Float32Array);
    if (o.length !== out.data.length) throw new Error(`${a.compare}: ${o.length} values, ONNX Runtime gave ${out.data.length}`);
    maxDiff = 0;
    for (let i = 0; i < o.length; ++i) maxDiff = Math.max(maxDiff, Math.abs(o[i] - out.data[i]));
  }
  const med = median(seconds);
  console.log(JSON.stringify({
    impl: 'onnxruntime', onnxruntime: version, batch: a.batch, seq: a.seq, threads: a.threads, reps: seconds.length,
    seconds_median: med, seconds_min: Math.min(...seconds), seconds_max: Math.max(...seconds),
    tokens_per_second: a.batch * a.seq / med, mean_abs_output: sumAbs / out.data.length, max_abs_output: maxAbs,
    max_abs_diff_vs_roformer_cpp: maxDiff,
  }));
}

main().catch((e) => {
  console.error(`ort_infer: ${e.message}`);
  process.exit(1);
});
