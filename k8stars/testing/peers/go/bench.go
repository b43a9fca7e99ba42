package main

// `tarspeer codec bench`: encode/decode throughput of TarsGo's builtin generated types.

import (
	"fmt"
	"syscall"
	"time"

	"github.com/TarsCloud/TarsGo/tars/protocol/codec"
	"github.com/TarsCloud/TarsGo/tars/protocol/res/endpointf"
	"github.com/TarsCloud/TarsGo/tars/protocol/res/requestf"
)

// endpointList is `struct EndpointList { 0 require vector<tars::EndpointF> eps; };`
// written by hand in exactly the shape tars2go generates for it.
type endpointList struct {
	Eps []endpointf.EndpointF
}

func (st *endpointList) WriteTo(buf *codec.Buffer) error {
	if err := buf.WriteHead(codec.LIST, 0); err != nil {
		return err
	}
	if err := buf.WriteInt32(int32(len(st.Eps)), 0); err != nil {
		return err
	}
	for _, v := range st.Eps {
		if err := v.WriteBlock(buf, 0); err != nil {
			return err
		}
	}
	return nil
}

func (st *endpointList) ReadFrom(r *codec.Reader) error {
	_, ty, err := r.SkipToNoCheck(0, true)
	if err != nil {
		return err
	}
	if ty != codec.LIST {
		return fmt.Errorf("require vector, but not")
	}
	var length int32
	if err := r.ReadInt32(&length, 0, true); err != nil {
		return err
	}
	st.Eps = make([]endpointf.EndpointF, length)
	for i := range st.Eps {
		if err := st.Eps[i].ReadBlock(r, 0, true); err != nil {
			return err
		}
	}
	return nil
}

type benchResult struct {
	EncodePerS    int64 `json:"encode_per_s"`
	DecodePerS    int64 `json:"decode_per_s"`
	EncodePerCPUS int64 `json:"encode_per_cpu_s"` // per CPU second of the whole process (GC workers included)
	DecodePerCPUS int64 `json:"decode_per_cpu_s"`
	Bytes         int   `json:"bytes"`
}

// cpuSeconds is the user+system CPU time of the process, every thread (the garbage collector's too).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// timedLoop gives calls per second of wall time and per second of CPU time.
func timedLoop(seconds float64, fn func() error) (float64, float64, error) {
	deadline := time.Now().Add(time.Duration(seconds * float64(time.Second)))
	start := time.Now()
	cpu0 := cpuSeconds()
	n := 0
	now := start
	for now.Before(deadline) {
		for i := 0; i < 256; i++ {
			if err := fn(); err != nil {
				return 0, 0, err
			}
		}
		n += 256
		now = time.Now()
	}
	cpu := cpuSeconds() - cpu0
	if cpu <= 0 {
		cpu = now.Sub(start).Seconds()
	}
	return float64(n) / now.Sub(start).Seconds(), float64(n) / cpu, nil
}

// benchOne times encode (into a reused codec.Buffer, as TarsGo's transport does) and
// decode (a fresh struct from a reused codec.Reader each time).
func benchOne(seconds float64, encode func(*codec.Buffer) error, decode func(*codec.Reader) error) (benchResult, error) {
	buf := codec.NewBuffer()
	if err := encode(buf); err != nil {
		return benchResult{}, err
	}
	data := append([]byte(nil), buf.ToBytes()...)
	rd := codec.NewReader(data)
	if err := decode(rd); err != nil {
		return benchResult{}, fmt.Errorf("sanity decode: %v", err)
	}
	enc, encCPU, err := timedLoop(seconds, func() error { buf.Reset(); return encode(buf) })
	if err != nil {
		return benchResult{}, err
	}
	dec, decCPU, err := timedLoop(seconds, func() error { rd.Reset(data); return decode(rd) })
	if err != nil {
		return benchResult{}, err
	}
	return benchResult{EncodePerS: int64(enc + 0.5), DecodePerS: int64(dec + 0.5),
		EncodePerCPUS: int64(encCPU + 0.5), DecodePerCPUS: int64(decCPU + 0.5), Bytes: len(data)}, nil
}

func runBench(req codecRequest) (any, error) {
	seconds := 1.0
	if req.Seconds != nil {
		seconds = *req.Seconds
	}
	if !(seconds > 0 && seconds <= 600) {
		return nil, fmt.Errorf(`"seconds" must be in (0, 600]`)
	}

	body := codec.NewBuffer()
	_ = body.WriteString("hello123", 1) // 10-byte sBuffer: the echo call's `s` parameter
	pkt := requestf.RequestPacket{
		IVersion:     1,
		IRequestId:   1,
		SServantName: "Test.EchoServer.EchoObj",
		SFuncName:    "echo",
		SBuffer:      toInt8(body.ToBytes()),
		ITimeout:     3000,
		Context:      map[string]string{},
		Status:       map[string]string{},
	}
	rp, err := benchOne(seconds,
		func(b *codec.Buffer) error { return pkt.WriteTo(b) },
		func(r *codec.Reader) error { var p requestf.RequestPacket; return p.ReadFrom(r) })
	if err != nil {
		return nil, fmt.Errorf("request_packet: %v", err)
	}

	var list endpointList
	for i := 0; i < 100; i++ {
		list.Eps = append(list.Eps, endpointf.EndpointF{Host: "127.0.0.1", Port: int32(10000 + i), Timeout: 60000, Istcp: 1})
	}
	el, err := benchOne(seconds,
		func(b *codec.Buffer) error { return list.WriteTo(b) },
		func(r *codec.Reader) error { var l endpointList; return l.ReadFrom(r) })
	if err != nil {
		return nil, fmt.Errorf("endpoint_list_100: %v", err)
	}
	return map[string]any{
		"peer":              "go TarsGo " + tarsGoVersion,
		"seconds_per_loop":  seconds,
		"request_packet":    rp,
		"endpoint_list_100": el,
	}, nil
}

func toInt8(b []byte) []int8 {
	out := make([]int8, len(b))
	for i, c := range b {
		out[i] = int8(c)
	}
	return out
}
