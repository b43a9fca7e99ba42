// Shared pieces of the @tars/rpc echo peer:
//   module Test { interface Echo { int echo(string s, out string r); }; };
// Hand-written equivalents of what tars2node generates (tars2node is not on npm): the
// parameters are numbered 1..N in declaration order, the return value is tag 0.
'use strict';

const net = require('net');
const T = require('@tars/stream');

// @tars/rpc never touches Nagle's algorithm; the peers turn TCP_NODELAY on for every
// socket (client and accepted) unless K8STARS_PEER_NODELAY=0.
function enableNoDelay() {
  if (process.env.K8STARS_PEER_NODELAY === '0') return false;
  const origConnect = net.Socket.prototype.connect;
  net.Socket.prototype.connect = function (...args) {
    const r = origConnect.apply(this, args);
    this.setNoDelay(true);
    return r;
  };
  const origEmit = net.Server.prototype.emit;
  net.Server.prototype.emit = function (event, sock, ...rest) {
    if (event === 'connection' && sock && typeof sock.setNoDelay === 'function') sock.setNoDelay(true);
    return origEmit.call(this, event, sock, ...rest);
  };
  return true;
}

// @tars/rpc prints diagnostics with console.log; keep stdout for the JSON result.
function consoleToStderr() {
  const util = require('util');
  const write = (...args) => process.stderr.write(util.format(...args) + '\n');
  console.log = write;
  console.info = write;
  console.warn = write;
  console.debug = write;
}

// Server side: a servant class as @tars/rpc's BindAdapter expects it.
class EchoImp {
  initialize() {}

  onDispatch(current, funcName, binBuffer) {
    switch (funcName) {
      case 'echo': {
        const is = new T.TarsInputStream(binBuffer);
        const s = is.readString(1, true, '');
        const os = new T.TarsOutputStream();
        os.writeInt32(0, 0); // return value
        os.writeString(2, s); // out string r
        current.doResponse(os.getBinBuffer());
        return 0;
      }
      case 'tars_ping':
        current.doResponse(new T.BinBuffer());
        return 0;
      default:
        return -3; // TARSSERVERNOFUNCERR
    }
  }
}

// Client side: a proxy class for Communicator.stringToProxy (which sets _worker).
class EchoProxy {
  constructor() {
    this._name = undefined;
    this._worker = undefined;
  }

  setTimeout(ms) {
    this._worker.timeout = ms;
  }

  echo(s) {
    const os = new T.TarsOutputStream();
    os.writeString(1, s);
    return this._worker.tars_invoke('echo', os.getBinBuffer()).then((data) => {
      const is = new T.TarsInputStream(data.response.sBuffer);
      return { ret: is.readInt32(0, true, 0), r: is.readString(2, true, '') };
    });
  }
}

// Tiny argv parser: --key value, --flag, positionals.
function parseArgs(argv, booleans) {
  const opts = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const key = eq > 0 ? a.slice(2, eq) : a.slice(2);
      if (eq > 0) opts[key] = a.slice(eq + 1);
      else if (booleans.includes(key)) opts[key] = true;
      else if (i + 1 < argv.length) opts[key] = argv[++i];
      else throw new Error(`option --${key} needs a value`);
    } else {
      opts._.push(a);
    }
  }
  return opts;
}

function errorText(e) {
  if (e && e.response && e.response.error) {
    const er = e.response.error;
    return `rpc error ${er.code}: ${er.message}`;
  }
  if (e && e.error && e.error.code !== undefined) return `rpc error ${e.error.code}: ${e.error.message}`;
  return e && e.message ? e.message : String(e);
}

module.exports = { EchoImp, EchoProxy, consoleToStderr, enableNoDelay, parseArgs, errorText };
