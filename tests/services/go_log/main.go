// Command logpeer sends remote logs to the TARS log service the way a TarsGo server does (tars.GetRemoteLogger):
//
//	logpeer --config=SERVER.conf FILE:MESSAGE...
//
// The server config names the app, server and log= servant. Each MESSAGE is logged at INFO to the remote logger
// of FILE; the program then waits for TarsGo's writer, which sends what it holds after a second without new lines
// (and so between two files, whose writers must not send at the same time).
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
	last := ""
	for _, arg := range os.Args[1:] {
		if strings.HasPrefix(arg, "--") { // --config=SERVER.conf, read by TarsGo itself
			continue
		}
		file, message, ok := strings.Cut(arg, ":")
		if !ok {
			_, _ = os.Stderr.WriteString("logpeer: expected FILE:MESSAGE, got " + arg + "\n")
			os.Exit(2)
		}
		if last != "" && file != last {
			// One file's writer sends before the next one's starts: TarsGo v1.4.6's writers share the
			// communicator's context map, and two sending at once can die of "concurrent map writes".
			time.Sleep(2500 * time.Millisecond)
		}
		last = file
		tars.GetRemoteLogger(file).Info(message)
	}
	time.Sleep(2500 * time.Millisecond) // RemoteTimeWriter sends after 1 s idle; one more second for the call
}
