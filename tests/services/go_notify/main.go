// Command notifypeer reports to the TARS notify service the way a TarsGo server does (tars.ReportNotifyInfo):
//
//	notifypeer --config=SERVER.conf LEVEL:MESSAGE...
//
// LEVEL is 0 (NotifyNormal), 1 (NotifyWarn) or 2 (NotifyError). The server config names the app, server and
// notify= servant. Each report is sent in order and waited for.
package main

import (
	"os"
	"strconv"
	"strings"

	"github.com/TarsCloud/TarsGo/tars"
)

func main() {
	if tars.GetServerConfig() == nil { // parses --config
		_, _ = os.Stderr.WriteString("notifypeer: --config=SERVER.conf is required\n")
		os.Exit(2)
	}
	for _, arg := range os.Args[1:] {
		if strings.HasPrefix(arg, "--") { // --config=SERVER.conf, read by TarsGo itself
			continue
		}
		level, message, ok := strings.Cut(arg, ":")
		n, err := strconv.Atoi(level)
		if !ok || err != nil {
			_, _ = os.Stderr.WriteString("notifypeer: expected LEVEL:MESSAGE, got " + arg + "\n")
			os.Exit(2)
		}
		tars.ReportNotifyInfo(int32(n), message)
	}
}
