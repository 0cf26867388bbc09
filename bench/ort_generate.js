#!/usr/bin/env node
// The ONNX Runtime side of bench_generate: greedy generation with a causal
// RoFormer, one decoding step exported to ONNX with its KV cache as inputs
// and outputs (bench/torch_generate.py --export-onnx), the usual
// `past_key_values` scheme: the prompt runs on an empty cache, then each step
// feeds the previous step's `present.*` outputs back as `past_key_values.*`.
// Same weights and prompt as the other sides; onnxruntime-node's CPU provider.
//
//   node bench/ort_generate.js --onnx FILE --model DIR [--prompt T] [--new N]
//        [--threads N] [--warmup N] [--reps N] [--compare FILE]
//
// DIR is written by `bench_generate --dump` (config.json, prompt.safetensors).
// Prints one JSON line, fields as torch_generate.py's. --compare reads
// roformer.cpp's logits of the prompt's last position (bench_generate
// --save-logits) and reports the largest absolute difference.
'use strict';
const fs = require('fs');
const path = require('path');
const {loadOrt, cpuSession, readSafetensors, typedArray, median} = require('./ort_common');

function args() {
  const a = {prompt: 128, new: 64, threads: 1, warmup: 1, reps: 3};
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i += 2) {
    const k = v[i], x = v[i + 1];
    if (x === undefined) throw new Error(`${k} needs a value`);
    if (k === '--onnx') a.onnx = x;
    else if (k === '--model') a.model = x;
    else if (k === '--compare') a.compare = x;
    else if (k === '--prompt') a.prompt = Number(x);
    else if (k === '--new') a.new = Number(x);
    else if (k === '--threads') a.threads = Number(x);
    else if (k === '--warmup') a.warmup = Number(x);
    else if (k === '--reps') a.reps = Number(x);
    else throw new Error(`unknown argument ${k}`);
  }
  if (!a.onnx || !a.model) throw new Error('--onnx and --model are required');
  if (!(a.prompt >= 1) || !(a.new >= 2) || !(a.reps >= 1) || !(a.threads >= 1) || !(a.warmup >= 0))
    throw new Error('--prompt, --reps and --threads must be positive, --new at least 2, --warmup not negative');
  return a;
}

function argmax(data) {
  let best = 0;
  for (let i = 1; i < data.length; ++i) if (data[i] > data[best]) best = i;
  return best;
}

async function main() {
  const a = args();
  const config = JSON.parse(fs.readFileSync(path.join(a.model, 'config.json'), 'utf8'));
  const layers = config.num_hidden_layers, heads = config.num_attention_heads;
  const headDim = config.hidden_size / heads;
  const ids = readSafetensors(path.join(a.model, 'prompt.safetensors')).input_ids;
  if (ids.dtype !== 'I64' || ids.shape.length !== 2 || ids.shape[1] < a.prompt)
    throw new Error(`prompt.safetensors: expected int64 (1, >=${a.prompt}), got ${ids.dtype} ${JSON.stringify(ids.shape)}`);
  const prompt = typedArray(ids, BigInt64Array).slice(0, a.prompt);

  const {ort, version} = loadOrt();
  const session = await cpuSession(ort, a.onnx, a.threads);
  const names = [];
  for (let i = 0; i < layers; ++i) for (const kv of ['key', 'value']) names.push([`past_key_values.${i}.${kv}`, `present.${i}.${kv}`]);

  const prefill = [], steps = [];
  let firstLogits = null, tokens = [];
  for (let rep = 0; rep < a.warmup + a.reps; ++rep) {
    const timed = rep >= a.warmup;
    const feeds = {input_ids: new ort.Tensor('int64', prompt, [1, a.prompt])};
    for (const [past] of names) feeds[past] = new ort.Tensor('float32', new Float32Array(0), [1, heads, 0, headDim]);
    let t0 = process.hrtime.bigint();
    let out = await session.run(feeds);
    let token = argmax(out.logits.data);
    if (timed) prefill.push(Number(process.hrtime.bigint() - t0) / 1e9);
    firstLogits = out.logits.data;
    tokens = [token];
    for (let s = 1; s < a.new; ++s) {
      const next = {input_ids: new ort.Tensor('int64', BigInt64Array.from([BigInt(token)]), [1, 1])};
      for (const [past, present] of names) next[past] = out[present];
      t0 = process.hrtime.bigint();
      out = await session.run(next);
      token = argmax(out.logits.data);
      if (timed) steps.push(Number(process.hrtime.bigint() - t0) / 1e9);
      tokens.push(token);
    }
  }
  let maxDiff = null;
  if (a.compare) {
    const ours = typedArray(readSafetensors(a.compare).logits, Float32Array);
    if (ours.length !== firstLogits.length)
      throw new Error(`${a.compare}: ${ours.length} logits, ONNX Runtime gave ${firstLogits.length}`);
    maxDiff = 0;
    for (let i = 0; i < ours.length; ++i) maxDiff = Math.max(maxDiff, Math.abs(ours[i] - firstLogits[i]));
  }
  const step = median(steps);
  console.log(JSON.stringify({
    impl: 'onnxruntime', onnxruntime: version, prompt: a.prompt, new_tokens: a.new, threads: a.threads, reps: a.reps,
    prefill_seconds: median(prefill), prefill_seconds_min: Math.min(...prefill), step_seconds: step,
    step_seconds_min: Math.min(...steps), step_seconds_max: Math.max(...steps), steps_per_second: 1 / step,
    max_abs_diff_vs_roformer_cpp: maxDiff, tokens,
  }));
}

main().catch((e) => {
  console.error(`ort_generate: ${e.message}`);
  process.exit(1);
});
