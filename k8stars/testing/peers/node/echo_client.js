#!/usr/bin/env node
// k8stars interop peer: a @tars/rpc client for Test.Echo.
//
//   node echo_client.js PROXY [--locator L] [--timeout MS] --once S
//   node echo_client.js PROXY [--locator L] --bench --concurrency C --seconds T --payload N
//
// PROXY is 'Test.EchoServer.EchoObj@tcp -h 127.0.0.1 -p 20001' (direct) or just the
// object name resolved through --locator 'tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 17890'.
// --once prints {"ret": .., "r": ..} (exit 0) or a message on stderr (exit 1);
// --bench prints {"qps", "p50_ms", "p99_ms", "errors", ...}.
'use strict';

const { EchoProxy, consoleToStderr, enableNoDelay, parseArgs, errorText } = require('./echo_common.js');

consoleToStderr();

function usage(msg) {
  process.stderr.write(`echo_client.js: ${msg}\n`);
  process.exit(2);
}

function percentileMs(sorted, q) {
  if (sorted.length === 0) return 0;
  let idx = Math.ceil(q * sorted.length) - 1;
  idx = Math.min(Math.max(idx, 0), sorted.length - 1);
  return sorted[idx] / 1e6;
}

async function bench(proxy, opts, nodelay) {
  const concurrency = parseInt(opts.concurrency || '1', 10);
  const seconds = parseFloat(opts.seconds || '5');
  const payloadLen = parseInt(opts.payload || '10', 10);
  if (!(concurrency >= 1) || !(seconds > 0) || !(payloadLen >= 0)) usage('bad --concurrency/--seconds/--payload');
  const payload = 'x'.repeat(payloadLen);

  await proxy.echo(payload); // warm-up: connect / resolve (throws -> exit 1)

  const lat = [];
  let errors = 0;
  let firstError;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(seconds * 1e9));
  async function worker() {
    for (;;) {
      const t0 = process.hrtime.bigint();
      if (t0 >= deadline) return;
      try {
        const res = await proxy.echo(payload);
        if (res.ret !== 0 || res.r !== payload) throw new Error(`bad echo reply: ret=${res.ret} len(r)=${res.r.length}`);
        lat.push(Number(process.hrtime.bigint() - t0));
      } catch (e) {
        errors++;
        if (firstError === undefined) firstError = errorText(e);
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  lat.sort((a, b) => a - b);
  const out = {
    qps: lat.length / elapsed,
    p50_ms: percentileMs(lat, 0.5),
    p99_ms: percentileMs(lat, 0.99),
    errors,
    calls: lat.length,
    seconds: elapsed,
    concurrency,
    payload: payloadLen,
    peer: 'node @tars/rpc ' + require('@tars/rpc/package.json').version,
    tcp_nodelay: nodelay,
  };
  if (firstError !== undefined) out.first_error = firstError;
  return out;
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2), ['bench']);
  } catch (e) {
    usage(e.message);
  }
  const proxyStr = opts.proxy || opts._[0];
  if (!proxyStr) usage('need a proxy string (positional or --proxy)');
  if (!proxyStr.includes('@') && !opts.locator) usage(`proxy ${JSON.stringify(proxyStr)} has no endpoint and no --locator was given`);
  if ((opts.once === undefined) === !opts.bench) usage('need exactly one of --once S or --bench');

  const nodelay = enableNoDelay();
  const client = require('@tars/rpc').client;
  if (opts.locator) client.setProperty('locator', opts.locator);
  const proxy = client.stringToProxy(EchoProxy, proxyStr);
  proxy.setTimeout(parseInt(opts.timeout || '3000', 10));

  let out;
  try {
    if (opts.bench) out = await bench(proxy, opts, nodelay);
    else out = await proxy.echo(String(opts.once));
  } catch (e) {
    process.stderr.write(`echo_client.js: echo failed: ${errorText(e)}\n`);
    process.exit(1);
  }
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(0);
}

main().catch((e) => {
  process.stderr.write(`echo_client.js: ${errorText(e)}\n`);
  process.exit(1);
});
