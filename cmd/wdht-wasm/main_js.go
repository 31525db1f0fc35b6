//go:build js

package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall/js"

	"github.com/hashicorp/go-hclog"

	"github.com/wdht/wdht/transport/webrtc"
)

// The JS API (wdht.d.ts): globalThis.wdht = {start, on, off, version}; a started node has
// id, lookup, announce, get, put, close. Every method that does network work returns a
// Promise; none blocks the page.

var (
	lmu       sync.Mutex
	listeners = map[string][]js.Value{}
)

// emit calls the listeners of event with data.
func emit(event string, data map[string]any) {
	lmu.Lock()
	fs := append([]js.Value(nil), listeners[event]...)
	lmu.Unlock()
	if len(fs) == 0 {
		return
	}
	v := js.ValueOf(data)
	for _, f := range fs {
		f.Invoke(v)
	}
}

// logWriter turns the node's log lines into log events, and prints them on the console.
type logWriter struct{}

func (logWriter) Write(b []byte) (int, error) {
	line := strings.TrimRight(string(b), "\n")
	js.Global().Get("console").Call("log", line)
	emit("log", map[string]any{"line": line})
	return len(b), nil
}

// promise runs f on a goroutine and returns a Promise of its result.
func promise(f func() (any, error)) js.Value {
	var handler js.Func
	handler = js.FuncOf(func(this js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		go func() {
			defer handler.Release()
			defer func() {
				if r := recover(); r != nil {
					reject.Invoke(js.Global().Get("Error").New(fmt.Sprint("wdht: ", r)))
				}
			}()
			v, err := f()
			if err != nil {
				reject.Invoke(js.Global().Get("Error").New(err.Error()))
				return
			}
			resolve.Invoke(js.ValueOf(v))
		}()
		return nil
	})
	return js.Global().Get("Promise").New(handler)
}

// strings returns the strings of a JS array (or one string), or nil.
func stringList(v js.Value) []string {
	switch v.Type() {
	case js.TypeString:
		return []string{v.String()}
	case js.TypeObject:
		var out []string
		for i := 0; i < v.Length(); i++ {
			out = append(out, v.Index(i).String())
		}
		return out
	}
	return nil
}

func str(v js.Value) string {
	if v.Type() == js.TypeString {
		return v.String()
	}
	return ""
}

func optInt(v js.Value) *int64 {
	if v.Type() != js.TypeNumber {
		return nil
	}
	n := int64(v.Float())
	return &n
}

func arg(args []js.Value, i int) js.Value {
	if i < len(args) {
		return args[i]
	}
	return js.Undefined()
}

// parseOptions reads start's options; bootstrap defaults to the page's own host.
func parseOptions(o js.Value) (options, hclog.Level, error) {
	var opts options
	level := hclog.Info
	if o.Type() == js.TypeObject {
		opts.Bootstrap = stringList(o.Get("bootstrap"))
		ice := o.Get("iceServers")
		if ice.Type() == js.TypeObject {
			for i := 0; i < ice.Length(); i++ {
				s := ice.Index(i)
				opts.ICEServers = append(opts.ICEServers, webrtc.ICEServer{URLs: stringList(s.Get("urls")),
					Username: str(s.Get("username")), Credential: str(s.Get("credential"))})
			}
		}
		if t := optInt(o.Get("timeout")); t != nil {
			opts.Timeout = msDuration(*t)
		}
		if l := str(o.Get("logLevel")); l != "" {
			if level = hclog.LevelFromString(l); level == hclog.NoLevel {
				return opts, level, fmt.Errorf("start: logLevel %q: want trace, debug, info, warn, error or off", l)
			}
		}
	}
	if len(opts.Bootstrap) == 0 {
		if host := js.Global().Get("location").Get("host"); host.Type() == js.TypeString && host.String() != "" {
			opts.Bootstrap = []string{host.String()}
		}
	}
	return opts, level, nil
}

// nodeObject is the JS object of a started node.
func nodeObject(nd *node) js.Value {
	obj := js.Global().Get("Object").New()
	obj.Set("id", nd.n.ID().String())
	fn := func(f func(args []js.Value) (any, error)) js.Func {
		return js.FuncOf(func(this js.Value, args []js.Value) any {
			return promise(func() (any, error) { return f(args) })
		})
	}
	obj.Set("lookup", fn(func(args []js.Value) (any, error) {
		onPeer := arg(args, 1)
		res, err := nd.lookup(nd.ctx, str(arg(args, 0)), func(p string) {
			if onPeer.Type() == js.TypeFunction {
				onPeer.Invoke(p)
			}
			emit("peer", map[string]any{"infohash": str(arg(args, 0)), "addr": p})
		})
		if err != nil {
			return nil, err
		}
		peers := res["peers"].([]string)
		list := make([]any, len(peers))
		for i, p := range peers {
			list[i] = p
		}
		res["peers"] = list
		return res, nil
	}))
	obj.Set("announce", fn(func(args []js.Value) (any, error) {
		port := 0
		if p := optInt(arg(args, 1)); p != nil {
			port = int(*p)
		}
		return nd.announce(nd.ctx, str(arg(args, 0)), port)
	}))
	obj.Set("get", fn(func(args []js.Value) (any, error) {
		var o getOptions
		if v := arg(args, 1); v.Type() == js.TypeObject {
			o = getOptions{Salt: str(v.Get("salt")), Key: str(v.Get("key")), Seq: optInt(v.Get("seq"))}
		}
		return nd.get(nd.ctx, str(arg(args, 0)), o)
	}))
	obj.Set("put", fn(func(args []js.Value) (any, error) {
		v := arg(args, 0)
		if v.Type() != js.TypeObject || v.Get("value").Type() != js.TypeString {
			return nil, errors.New("put: want an item {value: string, seed?, salt?, seq?}")
		}
		return nd.put(nd.ctx, putItem{Value: v.Get("value").String(), Seed: str(v.Get("seed")),
			Salt: str(v.Get("salt")), Seq: optInt(v.Get("seq"))})
	}))
	obj.Set("ping", fn(func(args []js.Value) (any, error) { return nd.ping(nd.ctx, str(arg(args, 0))) }))
	obj.Set("stats", js.FuncOf(func(this js.Value, args []js.Value) any {
		st, ts := nd.n.Stats(), nd.tr.Stats()
		return js.ValueOf(map[string]any{"nodes": len(nd.n.Nodes()), "connections": ts.Conns,
			"peers": st.Peers, "items": st.Items, "queriesIn": int(st.KRPC.QueriesIn), "queriesOut": int(st.KRPC.QueriesOut)})
	}))
	obj.Set("close", fn(func([]js.Value) (any, error) { nd.close(); return nil, nil }))
	return obj
}

func main() {
	api := js.Global().Get("Object").New()
	api.Set("version", "wdht-wasm")
	api.Set("start", js.FuncOf(func(this js.Value, args []js.Value) any {
		return promise(func() (any, error) {
			opts, level, err := parseOptions(arg(args, 0))
			if err != nil {
				return nil, err
			}
			log := hclog.New(&hclog.LoggerOptions{Name: "wdht", Level: level, Output: logWriter{}, DisableTime: false})
			nd, err := startNode(context.Background(), opts, log, emit)
			if err != nil {
				return nil, err
			}
			return nodeObject(nd), nil
		})
	}))
	api.Set("on", js.FuncOf(func(this js.Value, args []js.Value) any {
		ev, f := str(arg(args, 0)), arg(args, 1)
		if ev != "" && f.Type() == js.TypeFunction {
			lmu.Lock()
			listeners[ev] = append(listeners[ev], f)
			lmu.Unlock()
		}
		return nil
	}))
	api.Set("off", js.FuncOf(func(this js.Value, args []js.Value) any {
		ev, f := str(arg(args, 0)), arg(args, 1)
		lmu.Lock()
		fs := listeners[ev][:0]
		for _, g := range listeners[ev] {
			if !g.Equal(f) {
				fs = append(fs, g)
			}
		}
		listeners[ev] = fs
		lmu.Unlock()
		return nil
	}))
	js.Global().Set("wdht", api)
	if f := js.Global().Get("onwdhtready"); f.Type() == js.TypeFunction {
		f.Invoke(api)
	}
	select {}
}
