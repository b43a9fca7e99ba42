// Command tarspeer is a real TarsGo peer for k8stars interop tests and benchmarks.
//
//	tarspeer codec encode|decode|bench   < request.json > reply.json
//	tarspeer echo-server --config FILE   (or --endpoint 'tcp -h H -p P -t T' [--servant App.Server.Obj])
//	tarspeer echo-client PROXY [--locator L] (--once S | --bench --concurrency C --seconds T --payload N)
//
// The Test.Echo stubs are generated at build time from echo.tars (see the go:generate
// line); the generated package lives in gen/ and is not committed.
package main

//go:generate go tool tars2go -outdir=gen echo.tars

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/TarsCloud/TarsGo/tars"
)

// stderrWriter sends TarsGo's framework log (TLOG) to stderr so that stdout carries only
// the JSON results.
type stderrWriter struct{}

func (stderrWriter) Write(v []byte)   { _, _ = os.Stderr.Write(v) }
func (stderrWriter) NeedPrefix() bool { return true }

// tarsGoVersion is the module version pinned in go.mod (TarsGo v1.4.6 reports "1.4.5"
// as tars.Version).
const tarsGoVersion = "v1.4.6"

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  tarspeer codec encode|decode|bench < request.json
  tarspeer echo-server --config FILE | --endpoint 'tcp -h 127.0.0.1 -p P -t 60000' [--servant App.Server.Obj]
  tarspeer echo-client PROXY [--locator L] [--timeout MS] (--once S | --bench [--concurrency C] [--seconds T] [--payload N])
`)
}

func printJSON(v any) {
	w := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	_ = w.Flush()
}

func runCodec(args []string) int {
	if len(args) != 1 {
		usage()
		return 2
	}
	cmds := map[string]func(codecRequest) (any, error){"encode": runEncode, "decode": runDecode, "bench": runBench}
	fn, ok := cmds[args[0]]
	if !ok {
		usage()
		return 2
	}
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tarspeer codec:", err)
		return 1
	}
	var req codecRequest
	if len(data) > 0 {
		if err := json.Unmarshal(data, &req); err != nil {
			fmt.Fprintf(os.Stderr, "tarspeer codec %s: bad request JSON: %v\n", args[0], err)
			return 1
		}
	}
	out, err := fn(req)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tarspeer codec %s: %v\n", args[0], err)
		return 1
	}
	printJSON(out)
	return 0
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	tars.TLOG.SetWriter(stderrWriter{})
	var rc int
	switch os.Args[1] {
	case "codec":
		rc = runCodec(os.Args[2:])
	case "echo-server":
		rc = runEchoServer(os.Args[2:])
	case "echo-client":
		rc = runEchoClient(os.Args[2:])
	case "version":
		fmt.Println("tarspeer: TarsGo", tarsGoVersion)
	default:
		usage()
		rc = 2
	}
	os.Exit(rc)
}
