package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// percentile returns the p-th percentile (0 < p <= 1) of sorted values, nearest rank.
func percentile[T any](sorted []T, p float64) (T, bool) {
	if len(sorted) == 0 {
		var zero T
		return zero, false
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)], true
}

// row formats the p50, p90, p99 and max of sorted values.
func row[T any](sorted []T, format func(T) string) string {
	var cells []string
	for _, p := range []float64{0.5, 0.9, 0.99, 1} {
		v, ok := percentile(sorted, p)
		if !ok {
			cells = append(cells, "-")
			continue
		}
		cells = append(cells, format(v))
	}
	return strings.Join(cells, "\t") + "\t"
}

func pct(n, of int) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
}

func pct64(n, of uint64) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", 100*float64(n)/float64(of))
}

// dur formats a duration with three significant digits or so.
func dur(d time.Duration) string {
	switch {
	case d >= 100*time.Second:
		return d.Round(time.Second).String()
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Microsecond).String()
}

func bytesIEC(b uint64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", b>>10)
}

func count(n uint64) string {
	switch {
	case n >= 10_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 10_000:
		return fmt.Sprintf("%.0fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

// SuccessRate is the fraction of lookups that found the announced peer.
func (r *Result) SuccessRate() float64 {
	if r.Lookups == 0 {
		return 0
	}
	return float64(r.Found) / float64(r.Lookups)
}

// Print writes the result as a table.
func (r *Result) Print(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "wdht simulation: %d nodes, k %d, alpha %d; links %v + [0, %v) jitter, %.1f%% loss, %v ticks; seed %d\n",
		c.Nodes, c.K, c.Alpha, c.Delay, c.Jitter, 100*c.Loss, c.Tick, c.Seed)
	fmt.Fprintf(w, "clock: simulated (testing/synctest); every time below is simulated unless it says wall\n\n")

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "bootstrap\t%d nodes joined in %d batches, %d failed; took %v\n",
		r.Bootstrapped, r.Batches, r.BootstrapFailed, dur(r.BootstrapTime))
	tmin, _ := percentile(r.Tables, 0)
	tmed, _ := percentile(r.Tables, 0.5)
	tmax, _ := percentile(r.Tables, 1)
	settle := fmt.Sprintf("%v of maintenance", c.Settle)
	if mins := c.Settle.Minutes() * float64(c.Nodes); mins > 0 {
		settle += fmt.Sprintf(": %.1f packets sent and %.2f lookups per node per minute",
			float64(r.SettlePackets)/mins, float64(r.SettleLookups)/mins)
	}
	fmt.Fprintf(tw, "settle\t%s\n", settle)
	fmt.Fprintf(tw, "tables\trouting tables after settling: min %d, median %d, max %d nodes\n", tmin, tmed, tmax)
	smed, _ := percentile(r.Stored, 0.5)
	fmt.Fprintf(tw, "announce\t%d infohashes from random nodes: %d stored (median %d nodes each), %d failed\n",
		r.Announced+r.AnnounceFailed, r.Announced, smed, r.AnnounceFailed)
	fmt.Fprintf(tw, "churn\t%d nodes left and %d joined (%d failed to bootstrap) during the %v run\n",
		r.Left, r.Joined, r.JoinFailed, c.Window)
	fmt.Fprintf(tw, "lookups\t%d get_peers from other random nodes: %d found the peer, success %s; %d errors\n",
		r.Lookups, r.Found, pct(r.Found, r.Lookups), r.LookupErrors)
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 3, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "per lookup\tp50\tp90\tp99\tmax\t\n")
	itoa := func(v int) string { return fmt.Sprint(v) }
	fmt.Fprintf(tw, "rounds\t%s\n", row(r.Rounds, itoa))
	fmt.Fprintf(tw, "messages (queries + responses)\t%s\n", row(r.Messages, itoa))
	fmt.Fprintf(tw, "queries past their soft deadline\t%s\n", row(r.Stalled, itoa))
	fmt.Fprintf(tw, "latency (whole lookup)\t%s\n", row(r.Latency, dur))
	fmt.Fprintf(tw, "time to the peer (lookups that found it)\t%s\n", row(r.TimeToPeer, dur))
	tw.Flush()

	fmt.Fprintln(w)
	n := r.Net
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "network\t%s packets sent: %s lost, %s to departed nodes, %s dropped by full queues\n",
		count(n.Sent), pct64(n.Lost, n.Sent), pct64(n.NoListener, n.Sent), pct64(n.QueueFull, n.Sent))
	run := fmt.Sprintf("%v simulated", dur(r.SimTime))
	if r.Wall > 0 {
		run = fmt.Sprintf("%v wall, %s", dur(r.Wall), run)
	}
	// Per node: over the most nodes up at once, the N of the start (those that leave
	// close as others join).
	perNode := func(b uint64) string {
		return fmt.Sprintf("%.1f KiB per node", float64(b)/1024/float64(max(c.Nodes, 1)))
	}
	if r.PeakRSS > 0 {
		run += fmt.Sprintf("; peak RSS %s (%s)", bytesIEC(uint64(r.PeakRSS)), perNode(uint64(r.PeakRSS)))
	}
	run += fmt.Sprintf("; heap in use at the end %s (%s)", bytesIEC(r.Heap), perNode(r.Heap))
	fmt.Fprintf(tw, "run\t%s\n", run)
	tw.Flush()
}
