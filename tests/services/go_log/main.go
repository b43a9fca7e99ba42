// Command logpeer sends remote logs to the TARS log service the way a TarsGo server does (tars.GetRemoteLogger):
//
//	logpeer --config=SERVER.conf FILE:MESSAGE...
//
// The server config names the app, server and log= servant. Each MESSAGE is logged at INFO to the remote logger
// of FILE; the program then waits for TarsGo's writer, which sends what it holds after a second without new lines.
package main

import (
	"os"
	"strings"
	"time"

	"github.com/TarsCloud/TarsGo/tars"
)

func main() {
	if tars.GetServerConfig() == nil { // parses --config
		_, _ = os.Stderr.WriteString("logpeer: --config=SERVER.conf is required\n")
		os.Exit(2)
	}
	for _, arg := range os.Args[1:] {
		if strings.HasPrefix(arg, "--") { // --config=SERVER.conf, read by TarsGo itself
			continue
		}
		file, message, ok := strings.Cut(arg, ":")
		if !ok {
			_, _ = os.Stderr.WriteString("logpeer: expected FILE:MESSAGE, got " + arg + "\n")
			os.Exit(2)
		}
		tars.GetRemoteLogger(file).Info(message)
	}
	time.Sleep(2500 * time.Millisecond) // RemoteTimeWriter sends after 1 s idle; one more second for the call
}
