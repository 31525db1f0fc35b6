package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wdht/wdht/bridge"
	"github.com/wdht/wdht/internal/metrics"
	"github.com/wdht/wdht/transport/udp"
)

// opsServer is the HTTP server of --metrics-addr: /metrics, /healthz, /readyz and,
// with --pprof, /debug/pprof/.
type opsServer struct {
	l        net.Listener
	srv      *http.Server
	done     chan error
	stopping atomic.Bool // the node is stopping: not ready
}

// listenOps opens the --metrics-addr port. A port that cannot be opened is a usage
// error naming the flag: nothing else has started yet.
func listenOps(o *opsFlags) (*opsServer, error) {
	l, err := net.Listen("tcp", o.maddr.String())
	if err != nil {
		var se *net.OpError
		if errors.As(err, &se) && se.Err != nil {
			err = se.Err
		}
		return nil, badInput("--metrics-addr %q: cannot listen on %v: %v", o.metricsAddr, o.maddr, err)
	}
	return &opsServer{l: l}, nil
}

// serve starts answering: metrics read from src, readiness from ready (nil: ready).
func (s *opsServer) serve(src metrics.Sources, ready func() error, withPprof bool, log hclog.Logger) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		metrics.New(src))
	v, rev, _ := buildVersion()
	info := prometheus.NewGauge(prometheus.GaugeOpts{Name: "wdht_build_info", Help: "Always 1; the labels say what was built.",
		ConstLabels: prometheus.Labels{"version": v, "revision": rev, "goversion": runtime.Version()}})
	info.Set(1)
	reg.MustRegister(info)

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		err := ready()
		if s.stopping.Load() {
			err = errors.New("stopping")
		}
		if err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}),
	}
	s.done = make(chan error, 1)
	go func() { s.done <- s.srv.Serve(s.l) }()
}

// close stops the server (or closes its port if it never served).
func (s *opsServer) close() {
	if s.srv == nil {
		s.l.Close()
		return
	}
	s.srv.Close()
	<-s.done
}

// readiness returns the /readyz check of the nodes: each running node has at least one
// node in its routing table, and the signalling server (if any) is serving.
func readiness(n *nodes, sig *signalling) func() error {
	return func() error {
		var why []string
		if n.mainline != nil && n.mainline.Stats().Nodes == 0 {
			why = append(why, "the mainline routing table is empty")
		}
		if n.web != nil && n.web.Stats().Nodes == 0 {
			why = append(why, "the WebRTC routing table is empty")
		}
		if sig != nil && sig.srv == nil {
			why = append(why, "the signalling server is not serving")
		}
		if len(why) > 0 {
			return errors.New(strings.Join(why, "; "))
		}
		return nil
	}
}

// metricsSources returns the snapshots the metrics read: those of the parts that run.
func metricsSources(n *nodes, utr *udp.Transport, sig *signalling, br *bridge.Bridge) metrics.Sources {
	var src metrics.Sources
	if n.mainline != nil {
		src.Mainline = n.mainline.Stats
	}
	if n.web != nil {
		src.Web = n.web.Stats
	}
	if utr != nil {
		src.UDP = utr.Stats
	}
	if sig != nil {
		src.WebRTC = sig.tr.Stats
		if sig.srv != nil {
			src.Signal = sig.srv.Stats
		}
	}
	if br != nil {
		src.Bridge = br.Stats
	}
	return src
}
