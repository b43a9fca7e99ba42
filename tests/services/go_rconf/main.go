// Command rconfpeer loads files from the TARS config service the way a TarsGo server does (tars.RConf):
//
//	rconfpeer --config=SERVER.conf FILE... [app:FILE...] [list]
//
// FILE is a server-level file (GetConfig), app:FILE an app-level one (GetAppConfig), list the server's files
// (GetConfigList). The server config names the app, server, basepath and config= servant. Prints one JSON object:
// {"files": {name: content}, "errors": {name: message}, "list": [...]}.
package main

import (
	"encoding/json"
	"os"
	"strings"

	"github.com/TarsCloud/TarsGo/tars"
)

func main() {
	cfg := tars.GetServerConfig() // parses --config
	if cfg == nil {
		_, _ = os.Stderr.WriteString("rconfpeer: --config=SERVER.conf is required\n")
		os.Exit(2)
	}
	rconf := tars.GetRConf()
	out := map[string]any{}
	files, errs := map[string]string{}, map[string]string{}
	for _, arg := range os.Args[1:] {
		var content string
		var err error
		switch {
		case strings.HasPrefix(arg, "--"): // --config=SERVER.conf, read by TarsGo itself
			continue
		case arg == "list":
			list, lerr := rconf.GetConfigList()
			out["list"] = list
			if lerr != nil {
				errs["list"] = lerr.Error()
			}
			continue
		case strings.HasPrefix(arg, "app:"):
			content, err = rconf.GetAppConfig(strings.TrimPrefix(arg, "app:"))
		default:
			content, err = rconf.GetConfig(arg)
		}
		if err != nil {
			errs[arg] = err.Error()
		} else {
			files[arg] = content
		}
	}
	out["files"], out["errors"] = files, errs
	_ = json.NewEncoder(os.Stdout).Encode(out)
}
