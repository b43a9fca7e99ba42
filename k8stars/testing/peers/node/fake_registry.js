#!/usr/bin/env node
// k8stars test helper: a static tars.tarsregistry.QueryObj on @tars/rpc, so that the echo
// clients' --locator mode can be exercised without a real registry.
//
//   node fake_registry.js --endpoint 'tcp -h 127.0.0.1 -p 17890 -t 60000' \
//        --object 'Test.EchoServer.EchoObj=tcp -h 127.0.0.1 -p 20001 -t 60000' [--object ...]
//
// Answers findObjectById / findObjectById4Any / findObjectById4All /
// findObjectByIdInSameGroup / findObjectByIdInSameStation / findObjectByIdInSameSet
// (QueryF.tars) with the configured endpoints as the active list. Unknown ids get an
// empty list. Every lookup is logged to stdout as one JSON line.
'use strict';

const T = require('@tars/stream');
const EndpointF = require('@tars/registry/EndpointFTars.js').tars.EndpointF;
const { enableNoDelay, parseArgs } = require('./echo_common.js');

const objects = new Map();

function endpointList(id) {
  const l = T.List(EndpointF);
  for (const desc of objects.get(id) || []) {
    const items = desc.trim().split(/\s+/);
    const ep = new EndpointF();
    ep.istcp = items[0].toLowerCase() === 'udp' ? 0 : items[0].toLowerCase() === 'ssl' ? 2 : 1;
    ep.timeout = 3000;
    for (let i = 1; i + 1 < items.length; i += 2) {
      if (items[i] === '-h') ep.host = items[i + 1];
      else if (items[i] === '-p') ep.port = parseInt(items[i + 1], 10);
      else if (items[i] === '-t') ep.timeout = parseInt(items[i + 1], 10);
    }
    l.push(ep);
  }
  return l;
}

class QueryImp {
  initialize() {}

  onDispatch(current, funcName, binBuffer) {
    const is = new T.TarsInputStream(binBuffer);
    const os = new T.TarsOutputStream();
    let id;
    switch (funcName) {
      case 'findObjectById': // vector<EndpointF> findObjectById(string id)
        id = is.readString(1, true, '');
        os.writeList(0, endpointList(id));
        break;
      case 'findObjectById4Any': // int f(string id, out vector<EndpointF> active, out inactive)
      case 'findObjectById4All':
      case 'findObjectByIdInSameGroup':
        id = is.readString(1, true, '');
        os.writeInt32(0, 0);
        os.writeList(2, endpointList(id));
        os.writeList(3, T.List(EndpointF));
        break;
      case 'findObjectByIdInSameStation': // int f(string id, string station|setId, out active, out inactive)
      case 'findObjectByIdInSameSet':
        id = is.readString(1, true, '');
        os.writeInt32(0, 0);
        os.writeList(3, endpointList(id));
        os.writeList(4, T.List(EndpointF));
        break;
      case 'tars_ping':
        current.doResponse(new T.BinBuffer());
        return 0;
      default:
        return -3;
    }
    process.stdout.write(JSON.stringify({ func: funcName, id, found: (objects.get(id) || []).length }) + '\n');
    current.doResponse(os.getBinBuffer());
    return 0;
  }
}

function main() {
  const argv = process.argv.slice(2);
  const opts = parseArgs(argv, []);
  // --object may repeat; parseArgs keeps the last, so collect them here.
  for (let i = 0; i < argv.length; i++) {
    let spec;
    if (argv[i] === '--object') spec = argv[++i];
    else if (argv[i].startsWith('--object=')) spec = argv[i].slice('--object='.length);
    if (spec === undefined) continue;
    const eq = spec.indexOf('=');
    if (eq <= 0) throw new Error(`--object must be NAME=ENDPOINT, got ${JSON.stringify(spec)}`);
    const name = spec.slice(0, eq).trim();
    if (!objects.has(name)) objects.set(name, []);
    objects.get(name).push(spec.slice(eq + 1));
  }
  if (!opts.endpoint) throw new Error("need --endpoint 'tcp -h 127.0.0.1 -p P -t 60000'");
  enableNoDelay();
  const Server = require('@tars/rpc').server;
  const svr = Server.createServer();
  const o = new Server.BindAdapterOption();
  o.endpoint = opts.endpoint;
  o.servant = opts.servant || 'tars.tarsregistry.QueryObj';
  o.name = o.servant + 'Adapter';
  o.handleImp = QueryImp;
  svr.start(o);
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
}

try {
  main();
} catch (e) {
  process.stderr.write(`fake_registry.js: ${e.message}\n`);
  process.exit(2);
}
