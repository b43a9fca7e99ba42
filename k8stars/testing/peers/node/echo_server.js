#!/usr/bin/env node
// k8stars interop peer: a @tars/rpc server for Test.Echo.
//
//   node echo_server.js --endpoint 'tcp -h 127.0.0.1 -p 20001 -t 60000' [--servant Test.EchoServer.EchoObj]
//   node echo_server.js --config server.conf        (or TARS_CONFIG=server.conf node echo_server.js)
//
// With a classic TARS config file the servant is App.Server.EchoObj (from
// <tars><application><server> app= / server=) unless --servant overrides it.
'use strict';

const { EchoImp, enableNoDelay, parseArgs, errorText } = require('./echo_common.js');

function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2), []);
  } catch (e) {
    process.stderr.write(`echo_server.js: ${e.message}\n`);
    process.exit(2);
  }
  const nodelay = enableNoDelay();
  const Server = require('@tars/rpc').server;

  if (opts.endpoint) {
    const servant = opts.servant || 'Test.EchoServer.EchoObj';
    const svr = Server.createServer();
    const o = new Server.BindAdapterOption();
    o.endpoint = opts.endpoint;
    o.name = servant + 'Adapter';
    o.servant = servant;
    o.handleImp = EchoImp;
    svr.start(o);
    process.stdout.write(`node echo_server serving ${servant} at ${opts.endpoint} (nodelay=${nodelay})\n`);
  } else {
    const config = opts.config || process.env.TARS_CONFIG;
    if (!config) {
      process.stderr.write('echo_server.js: need --endpoint E or --config FILE (or $TARS_CONFIG)\n');
      process.exit(2);
    }
    const svr = new Server();
    let servant;
    svr.initialize(config, (s) => {
      if (!s.Application || !s.ServerName) throw new Error(`${config}: no <tars><application><server> app/server`);
      servant = opts.servant || `${s.Application}.${s.ServerName}.EchoObj`;
      s.addServant(EchoImp, servant);
    });
    svr.start();
    process.stdout.write(`node echo_server serving ${servant} from ${config} (nodelay=${nodelay})\n`);
  }

  const stop = () => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

try {
  main();
} catch (e) {
  process.stderr.write(`echo_server.js: ${errorText(e)}\n`);
  process.exit(1);
}
