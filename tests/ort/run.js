#!/usr/bin/env node
// Runs ONNX models in ONNX Runtime (the CPU build inside onnxruntime-node) on inputs given as
// .npy files and writes every output as a .npy file: ONNX Runtime as an oracle for reinit's
// reference executor (tests/run_model.cc) and for the models reinit writes. A test tool, used
// by tests/ort_test.py; the package is installed by .ci/setup-ort (npm ci --ignore-scripts here).
//
// Usage:
//   node run.js [--opt LEVEL] MODEL.onnx IN_DIR OUT_DIR
//       reads IN_DIR/<input>.npy for every graph input that is not an initializer, writes
//       OUT_DIR/<output>.npy for every graph output ('/' in a name becomes '_', as run_model
//       does). Exit 0 on success, 1 with the error on stderr.
//   node run.js [--opt LEVEL] --jobs JOBS.json
//       JOBS.json: [{"model", "in_dir", "out_dir", "opt" (optional: LEVEL for this job)}, ...],
//       run one after another in this one process (node and the binding load once). Prints
//       one JSON line per job: {"model", "out_dir", "ok", "error" (when not ok), "outputs":
//       [names], "seconds"}; exit 0 unless the jobs file itself cannot be read.
//   node run.js [--opt LEVEL] --serve
//       the same jobs, one JSON object a line on stdin, each answered by its line on stdout
//       as soon as it has run (a test can run a model, check and delete it, then send the
//       next); ends at the end of stdin.
//   --opt LEVEL: ONNX Runtime's graph optimization level, disabled (default: the graph runs as
//       written, no fusion or constant folding), basic, extended or all.
// One thread (intra- and inter-op), sequential execution, the CPU execution provider.
// .npy: versions 1.0-3.0, C order, little-endian; f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1.
'use strict';

const fs = require('fs');
const path = require('path');

const LEVELS = ['disabled', 'basic', 'extended', 'all'];

function loadOrt() {
  try {
    return require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));
  } catch (e) {
    process.stderr.write(`run.js: cannot load onnxruntime-node from ${__dirname}/node_modules ` +
                         `(install it: bash .ci/setup-ort): ${e.message}\n`);
    process.exit(3);
  }
}

// descr -> [ONNX Runtime type, TypedArray, bytes per element]
const DESCR = {
  '<f2': ['float16', Uint16Array, 2],
  '<f4': ['float32', Float32Array, 4],
  '<f8': ['float64', Float64Array, 8],
  '|i1': ['int8', Int8Array, 1],
  '<i2': ['int16', Int16Array, 2],
  '<i4': ['int32', Int32Array, 4],
  '<i8': ['int64', BigInt64Array, 8],
  '|u1': ['uint8', Uint8Array, 1],
  '<u2': ['uint16', Uint16Array, 2],
  '<u4': ['uint32', Uint32Array, 4],
  '<u8': ['uint64', BigUint64Array, 8],
  '|b1': ['bool', Uint8Array, 1],
};
const TYPE_DESCR = {};
for (const [descr, [type]] of Object.entries(DESCR)) TYPE_DESCR[type] = descr;

function readNpy(ort, file) {
  const buf = fs.readFileSync(file);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') {
    throw new Error(`${file}: not a .npy file`);
  }
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']*)'/.exec(header);
  const fortran = /'fortran_order':\s*(True|False)/.exec(header);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shapeText) throw new Error(`${file}: cannot parse header ${header}`);
  if (fortran[1] === 'True') throw new Error(`${file}: Fortran order is not supported`);
  let d = descr[1];
  if (d === '<b1') d = '|b1';
  if (d === '<u1') d = '|u1';
  if (d === '<i1') d = '|i1';
  if (!(d in DESCR)) throw new Error(`${file}: dtype ${descr[1]} is not supported`);
  const [type, Ctor, size] = DESCR[d];
  const dims = shapeText[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  if (buf.length - offset < count * size) throw new Error(`${file}: data is truncated`);
  // A copy, so that the typed array is aligned whatever the header length.
  const data = new Ctor(buf.buffer.slice(buf.byteOffset + offset,
                                         buf.byteOffset + offset + count * size));
  return new ort.Tensor(type, data, dims);
}

function npyBytes(tensor) {
  const descr = TYPE_DESCR[tensor.type];
  if (!descr) throw new Error(`output type ${tensor.type} cannot be written as .npy`);
  const dims = tensor.dims;
  const shape = '(' + dims.join(', ') + (dims.length === 1 ? ',' : '') + ')';
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const data = tensor.data;
  return Buffer.concat([head, Buffer.from(header, 'latin1'),
                        Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

function fileName(name) {
  return name.replace(/\//g, '_');
}

async function runOne(ort, opt, model, inDir, outDir) {
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: opt,
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  });
  try {
    const feeds = {};
    for (const name of session.inputNames) {
      const file = path.join(inDir, fileName(name) + '.npy');
      if (!fs.existsSync(file)) throw new Error(`no input file ${file} for input '${name}'`);
      feeds[name] = readNpy(ort, file);
    }
    const results = await session.run(feeds);
    fs.mkdirSync(outDir, { recursive: true });
    for (const name of session.outputNames) {
      fs.writeFileSync(path.join(outDir, fileName(name) + '.npy'), npyBytes(results[name]));
    }
    return session.outputNames;
  } finally {
    await session.release();
  }
}

function message(e) {
  return (e && e.message ? e.message : String(e)).trim();
}

async function runJob(ort, opt, job) {
  const t0 = process.hrtime.bigint();
  const line = { model: job.model, out_dir: job.out_dir };
  try {
    if (job.opt && !LEVELS.includes(job.opt)) throw new Error(`opt must be one of ${LEVELS}`);
    line.outputs = await runOne(ort, job.opt || opt, job.model, job.in_dir, job.out_dir);
    line.ok = true;
  } catch (e) {
    line.ok = false;
    line.error = message(e);
  }
  line.seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return JSON.stringify(line) + '\n';
}

async function main() {
  const args = process.argv.slice(2);
  let opt = 'disabled';
  let jobs = null;
  let serve = false;
  const positional = [];
  for (let k = 0; k < args.length; ++k) {
    if (args[k] === '--opt') opt = args[++k];
    else if (args[k] === '--jobs') jobs = args[++k];
    else if (args[k] === '--serve') serve = true;
    else positional.push(args[k]);
  }
  if (!LEVELS.includes(opt)) {
    process.stderr.write(`run.js: --opt must be disabled, basic, extended or all, not ${opt}\n`);
    return 2;
  }
  if (jobs === null && !serve && positional.length !== 3) {
    process.stderr.write('usage: node run.js [--opt LEVEL] MODEL.onnx IN_DIR OUT_DIR\n' +
                         '       node run.js [--opt LEVEL] --jobs JOBS.json\n' +
                         '       node run.js [--opt LEVEL] --serve\n');
    return 2;
  }
  const ort = loadOrt();
  if (serve) {
    const rl = require('readline').createInterface({ input: process.stdin, terminal: false });
    for await (const text of rl) {
      if (!text.trim()) continue;
      let job;
      try {
        job = JSON.parse(text);
      } catch (e) {
        process.stdout.write(JSON.stringify({ ok: false, error: `bad job: ${message(e)}` }) + '\n');
        continue;
      }
      process.stdout.write(await runJob(ort, opt, job));
    }
    return 0;
  }
  if (jobs === null) {
    try {
      await runOne(ort, opt, positional[0], positional[1], positional[2]);
      return 0;
    } catch (e) {
      process.stderr.write(`run.js: ${positional[0]}: ${message(e)}\n`);
      return 1;
    }
  }
  let list;
  try {
    list = JSON.parse(fs.readFileSync(jobs, 'utf8'));
  } catch (e) {
    process.stderr.write(`run.js: cannot read ${jobs}: ${message(e)}\n`);
    return 2;
  }
  for (const job of list) process.stdout.write(await runJob(ort, opt, job));
  return 0;
}

main().then((code) => { process.exitCode = code; },
            (e) => { process.stderr.write(`run.js: ${message(e)}\n`); process.exitCode = 1; });
