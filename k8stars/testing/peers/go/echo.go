package main

// `tarspeer echo-server` and `tarspeer echo-client`: a classic TarsGo server and client
// for `module Test { interface Echo { int echo(string s, out string r); }; };`.

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/TarsCloud/TarsGo/tars"
	"github.com/TarsCloud/TarsGo/tars/util/current"

	"k8stars/tarspeer/gen/Test"
)

type echoImp struct {
	// echoLen is reported to the property servant (`property=` in the config) when one is configured:
	// TarsGo panics creating a property without one, so it stays nil otherwise.
	echoLen *tars.PropertyReport
}

func (e echoImp) Echo(s string, r *string) (int32, error) {
	*r = s
	if e.echoLen != nil {
		e.echoLen.Report(len(s))
	}
	return 0, nil
}

// newEchoImp creates the "echo_len" property (every TarsGo policy) when the config names a property servant.
func newEchoImp() echoImp {
	if tars.GetClientConfig().ValidateProperty() != nil {
		return echoImp{}
	}
	return echoImp{echoLen: tars.CreatePropertyReport("echo_len", tars.NewSum(), tars.NewCount(), tars.NewMax(),
		tars.NewMin(), tars.NewAvg(), tars.NewDistr([]int{0, 10, 100}))}
}

// parseInterspersed lets flags and positional arguments come in any order.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// writeServerConfig renders a minimal classic TarsGo server config for one servant.
func writeServerConfig(endpoint, servant string, nodelay bool) (string, error) {
	parts := strings.Split(servant, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("--servant must look like App.Server.Obj, got %q", servant)
	}
	dir, err := os.MkdirTemp("", "tarspeer-")
	if err != nil {
		return "", err
	}
	conf := fmt.Sprintf(`<tars>
  <application>
    <server>
      app=%s
      server=%s
      localip=127.0.0.1
      logpath=%s
      logLevel=ERROR
      tcpnodelay=%t
      gracedowntimeout=1000
      <%s.%s.%sAdapter>
        endpoint=%s
        servant=%s
        protocol=tars
        threads=1
        queuecap=100000
        queuetimeout=60000
      </%s.%s.%sAdapter>
    </server>
  </application>
</tars>
`, parts[0], parts[1], dir, nodelay, parts[0], parts[1], parts[2], endpoint, servant, parts[0], parts[1], parts[2])
	path := filepath.Join(dir, "echo.conf")
	return path, os.WriteFile(path, []byte(conf), 0o644)
}

func runEchoServer(args []string) int {
	fs := flag.NewFlagSet("echo-server", flag.ContinueOnError)
	config := fs.String("config", os.Getenv("TARS_CONFIG"), "classic TARS server config file (default $TARS_CONFIG)")
	endpoint := fs.String("endpoint", "", "listen endpoint, e.g. 'tcp -h 127.0.0.1 -p 20001 -t 60000' (instead of --config)")
	servant := fs.String("servant", "", "servant name (default Test.EchoServer.EchoObj with --endpoint, App.Server.EchoObj from --config)")
	nodelay := fs.Bool("tcpnodelay", true, "with --endpoint: set the server's tcpnodelay key (TarsGo default is false)")
	if _, err := parseInterspersed(fs, args); err != nil {
		return 2
	}
	if *endpoint != "" {
		if *servant == "" {
			*servant = "Test.EchoServer.EchoObj"
		}
		path, err := writeServerConfig(*endpoint, *servant, *nodelay)
		if err != nil {
			fmt.Fprintln(os.Stderr, "echo-server:", err)
			return 1
		}
		*config = path
	}
	if *config == "" {
		fmt.Fprintln(os.Stderr, "echo-server: need --config FILE (or $TARS_CONFIG) or --endpoint E")
		return 2
	}
	if _, err := os.Stat(*config); err != nil {
		fmt.Fprintln(os.Stderr, "echo-server:", err)
		return 1
	}
	tars.ServerConfigPath = *config
	cfg := tars.GetServerConfig()
	if cfg.App == "" || cfg.Server == "" {
		fmt.Fprintf(os.Stderr, "echo-server: %s has no <tars><application><server> app/server\n", *config)
		return 1
	}
	name := *servant
	if name == "" {
		name = cfg.App + "." + cfg.Server + ".EchoObj"
	}
	Test.NewEcho().AddServant(newEchoImp(), name)
	fmt.Printf("tarspeer echo-server %s serving %s\n", tars.Version, name)
	tars.Run()
	return 0
}

type clientOpts struct {
	proxy       string
	locator     string
	timeoutMs   int
	once        *string
	bench       bool
	concurrency int
	seconds     float64
	payload     int
	config      string
	lingerMs    int
	trace       bool
}

func parseClientArgs(args []string) (*clientOpts, error) {
	o := &clientOpts{}
	fs := flag.NewFlagSet("echo-client", flag.ContinueOnError)
	fs.StringVar(&o.proxy, "proxy", "", "proxy string: 'Obj@tcp -h H -p P' or an object name (with --locator)")
	fs.StringVar(&o.locator, "locator", "", "registry locator, e.g. 'tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 17890'")
	fs.IntVar(&o.timeoutMs, "timeout", 3000, "call timeout, ms")
	once := fs.String("once", "\x00", "call echo(S) once, print the JSON result")
	fs.BoolVar(&o.bench, "bench", false, "closed-loop benchmark")
	fs.IntVar(&o.concurrency, "concurrency", 1, "concurrent callers (bench)")
	fs.Float64Var(&o.seconds, "seconds", 5, "bench duration, s")
	fs.IntVar(&o.payload, "payload", 10, "bench payload size, bytes")
	fs.StringVar(&o.config, "config", "", "classic TARS config: its <client> stat= gets this client's call statistics")
	fs.IntVar(&o.lingerMs, "linger", 0, "ms to stay after the calls, so that the stat report goes out")
	fs.BoolVar(&o.trace, "trace", false, "--once: open a call-chain trace with parameters (needs --config with log=)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, err
	}
	if o.proxy == "" && len(pos) > 0 {
		o.proxy, pos = pos[0], pos[1:]
	}
	if len(pos) > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", pos)
	}
	if *once != "\x00" {
		o.once = once
	}
	if o.proxy == "" {
		return nil, fmt.Errorf("need a proxy string (positional or --proxy)")
	}
	if !strings.Contains(o.proxy, "@") && o.locator == "" {
		return nil, fmt.Errorf("proxy %q has no endpoint and no --locator was given", o.proxy)
	}
	if (o.once == nil) == !o.bench {
		return nil, fmt.Errorf("need exactly one of --once S or --bench")
	}
	if o.concurrency < 1 || o.seconds <= 0 || o.payload < 0 {
		return nil, fmt.Errorf("bad --concurrency/--seconds/--payload")
	}
	return o, nil
}

func runEchoClient(args []string) int {
	o, err := parseClientArgs(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo-client:", err)
		return 2
	}
	if o.config != "" {
		tars.ServerConfigPath = o.config
		_ = tars.GetServerConfig()
		// TarsGo starts its stat reporter in a goroutine; calls made before it exists are not reported
		for i := 0; i < 500 && tars.StatReport == nil; i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
	defer time.Sleep(time.Duration(o.lingerMs) * time.Millisecond)
	comm := tars.NewCommunicator()
	if o.locator != "" {
		comm.SetProperty("locator", o.locator)
	}
	proxy := Test.NewEchoClient(o.proxy, comm)
	proxy.TarsSetTimeout(o.timeoutMs)
	// TarsGo dials with net.DialTimeout, so client connections have TCP_NODELAY (Go's default).

	if o.once != nil {
		var r string
		ctx := current.ContextWithTarsCurrent(context.Background())
		traceID := ""
		if o.trace { // as a TarsGo business does: the generated stub writes cs/cr, the servers sr/ss
			current.OpenTarsTrace(ctx, true)
			if t, ok := current.GetTarsTrace(ctx); ok {
				traceID = t.SpanContext().TraceID()
			}
		}
		ret, err := proxy.EchoWithContext(ctx, *o.once, &r)
		if err != nil {
			fmt.Fprintln(os.Stderr, "echo-client: echo failed:", err)
			return 1
		}
		out := map[string]any{"ret": ret, "r": r}
		if o.trace { // only asked for: the other tests compare the whole object
			out["trace"] = traceID
		}
		printJSON(out)
		return 0
	}

	payload := strings.Repeat("x", o.payload)
	var r string
	if _, err := proxy.Echo(payload, &r); err != nil { // warm-up: connect / resolve
		fmt.Fprintln(os.Stderr, "echo-client: warm-up call failed:", err)
		return 1
	}
	type result struct {
		lat    []time.Duration
		errors int
		first  string
	}
	results := make([]result, o.concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(time.Duration(o.seconds * float64(time.Second)))
	for i := 0; i < o.concurrency; i++ {
		wg.Add(1)
		go func(res *result) {
			defer wg.Done()
			var out string
			for {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				ret, err := proxy.Echo(payload, &out)
				if err == nil && (ret != 0 || out != payload) {
					err = fmt.Errorf("bad echo reply: ret=%d len(r)=%d", ret, len(out))
				}
				if err != nil {
					res.errors++
					if res.first == "" {
						res.first = err.Error()
					}
					continue
				}
				res.lat = append(res.lat, time.Since(t0))
			}
		}(&results[i])
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	var all []time.Duration
	errs := 0
	firstErr := ""
	for _, r := range results {
		all = append(all, r.lat...)
		errs += r.errors
		if firstErr == "" {
			firstErr = r.first
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	out := map[string]any{
		"qps":         float64(len(all)) / elapsed,
		"p50_ms":      percentileMs(all, 0.50),
		"p99_ms":      percentileMs(all, 0.99),
		"errors":      errs,
		"calls":       len(all),
		"seconds":     elapsed,
		"concurrency": o.concurrency,
		"payload":     o.payload,
		"peer":        "go TarsGo " + tarsGoVersion,
		"tcp_nodelay": true,
	}
	if firstErr != "" {
		out["first_error"] = firstErr
	}
	printJSON(out)
	return 0
}

// percentileMs: nearest-rank percentile of sorted latencies, in milliseconds.
func percentileMs(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	idx := int(q*float64(len(sorted))+0.999999) - 1
	if idx < 0 {
		idx = 0
	}
	if idx >= len(sorted) {
		idx = len(sorted) - 1
	}
	return float64(sorted[idx].Nanoseconds()) / 1e6
}
