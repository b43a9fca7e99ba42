// Command keepalivebench is the load generator of bench/registry: TarsGo clients calling the registry's keepAlive
// (tars.tarsregistry.Registry, K8STARS's interface) as fast as they can, each caller cycling over its share of the
// servers listed in --keys, and printing calls/s with latency percentiles as JSON.
//
//	keepalivebench --proxy 'tars.tarsregistry.Registry@tcp -h H -p P' --keys FILE --concurrency C --seconds T
//
// FILE has one "node application server" per line. keepAliveReq is encoded by hand, in the shape tars2go
// generates for `void keepAlive(keepAliveReq req)` (K8STARS's tarsregistry.tars, not on the Go module proxy).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/TarsCloud/TarsGo/tars"
	"github.com/TarsCloud/TarsGo/tars/protocol/codec"
	"github.com/TarsCloud/TarsGo/tars/protocol/res/requestf"
)

// keepAliveArgs: the call's parameters, `req` at tag 1 (struct keepAliveReq { 0 nodeName; 1 state; 2 application;
// 3 server; }).
func keepAliveArgs(node, state, app, server string) []byte {
	buf := codec.NewBuffer()
	_ = buf.WriteHead(codec.StructBegin, 1)
	_ = buf.WriteString(node, 0)
	_ = buf.WriteString(state, 1)
	_ = buf.WriteString(app, 2)
	_ = buf.WriteString(server, 3)
	_ = buf.WriteHead(codec.StructEnd, 0)
	return append([]byte(nil), buf.ToBytes()...)
}

func main() {
	proxy := flag.String("proxy", "", "the registry's Registry servant: 'tars.tarsregistry.Registry@tcp -h H -p P'")
	keys := flag.String("keys", "", "file of 'node application server' lines")
	concurrency := flag.Int("concurrency", 1, "concurrent callers")
	seconds := flag.Float64("seconds", 5, "length of the run")
	timeoutMs := flag.Int("timeout", 3000, "call timeout, ms")
	flag.Parse()
	if *proxy == "" || *keys == "" || *concurrency < 1 || *seconds <= 0 {
		fmt.Fprintln(os.Stderr, "usage: keepalivebench --proxy P --keys FILE [--concurrency C] [--seconds T]")
		os.Exit(2)
	}
	f, err := os.Open(*keys)
	if err != nil {
		fmt.Fprintln(os.Stderr, "keepalivebench:", err)
		os.Exit(1)
	}
	var calls [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Fields(sc.Text())
		if len(parts) == 3 {
			calls = append(calls, keepAliveArgs(parts[0], "active", parts[1], parts[2]))
		}
	}
	_ = f.Close()
	if len(calls) == 0 {
		fmt.Fprintln(os.Stderr, "keepalivebench: no keys")
		os.Exit(1)
	}

	comm := tars.NewCommunicator()
	reg := tars.NewServantProxy(comm, *proxy)
	reg.TarsSetTimeout(*timeoutMs)
	invoke := func(args []byte) error {
		var resp requestf.ResponsePacket
		if err := reg.TarsInvoke(context.Background(), 0, "keepAlive", args, nil, nil, &resp); err != nil {
			return err
		}
		if resp.IRet != 0 {
			return fmt.Errorf("keepAlive: ret %d: %s", resp.IRet, resp.SResultDesc)
		}
		return nil
	}
	if err := invoke(calls[0]); err != nil { // warm-up: connect
		fmt.Fprintln(os.Stderr, "keepalivebench: warm-up call failed:", err)
		os.Exit(1)
	}

	type result struct {
		lat    []time.Duration
		errors int
		first  string
	}
	results := make([]result, *concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(time.Duration(*seconds * float64(time.Second)))
	for i := 0; i < *concurrency; i++ {
		wg.Add(1)
		go func(i int, res *result) {
			defer wg.Done()
			for n := i; ; n += *concurrency {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				if err := invoke(calls[n%len(calls)]); err != nil {
					res.errors++
					if res.first == "" {
						res.first = err.Error()
					}
					continue
				}
				res.lat = append(res.lat, time.Since(t0))
			}
		}(i, &results[i])
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	var all []time.Duration
	errs, first := 0, ""
	for _, r := range results {
		all = append(all, r.lat...)
		errs += r.errors
		if first == "" {
			first = r.first
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(q float64) float64 {
		if len(all) == 0 {
			return 0
		}
		i := int(q*float64(len(all))+0.5) - 1
		if i < 0 {
			i = 0
		}
		if i >= len(all) {
			i = len(all) - 1
		}
		return float64(all[i].Microseconds()) / 1000
	}
	out := map[string]any{
		"qps": float64(len(all)) / elapsed, "p50_ms": pct(0.5), "p99_ms": pct(0.99), "errors": errs,
		"calls": len(all), "seconds": elapsed, "concurrency": *concurrency,
	}
	if first != "" {
		out["first_error"] = first
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}
