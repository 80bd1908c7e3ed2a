package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// latencyBuckets are the upper bounds, in seconds, of the upstream latency
// histogram (time from forwarding a request to its response headers).
var latencyBuckets = [...]float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// metrics are the proxy's Prometheus counters. Each app's are made once,
// when its route is first set, and kept (so counters never go back) until
// the process ends; a request reaches them through its route, with no
// lookup by name.
type metrics struct {
	conns atomic.Int64 // open client connections (hijacked ones leave)

	mu   sync.Mutex
	apps map[string]*appMetrics
	none *appMetrics // requests for hosts no app serves
}

// appMetrics counts one app's requests by status code and the latency of
// its upstreams.
type appMetrics struct {
	codes   sync.Map // int -> *atomic.Uint64
	buckets [len(latencyBuckets) + 1]atomic.Uint64
	count   atomic.Uint64
	sumNano atomic.Uint64
}

func newMetrics() *metrics {
	return &metrics{apps: map[string]*appMetrics{}, none: &appMetrics{}}
}

// forApp returns app's counters, making them on first use.
func (m *metrics) forApp(app string) *appMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	am := m.apps[app]
	if am == nil {
		am = &appMetrics{}
		m.apps[app] = am
	}
	return am
}

// request counts one answered request.
func (am *appMetrics) request(code int) {
	if code == 0 {
		code = http.StatusOK
	}
	c, ok := am.codes.Load(code)
	if !ok {
		c, _ = am.codes.LoadOrStore(code, new(atomic.Uint64))
	}
	c.(*atomic.Uint64).Add(1)
}

// latency records the time an upstream took to send response headers.
func (am *appMetrics) latency(d time.Duration) {
	s := d.Seconds()
	i := sort.SearchFloat64s(latencyBuckets[:], s)
	am.buckets[i].Add(1)
	am.count.Add(1)
	am.sumNano.Add(uint64(d.Nanoseconds()))
}

// connState keeps the open connection gauge; set as http.Server.ConnState.
func (m *metrics) connState(_ net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		m.conns.Add(1)
	case http.StateHijacked, http.StateClosed:
		m.conns.Add(-1)
	}
}

// WriteMetrics writes the proxy's metrics in the Prometheus text format:
// requests by app and status code, upstream latency per app, open
// connections, requests in flight and upgraded connections.
func (p *Proxy) WriteMetrics(w io.Writer) error {
	bw := bufio.NewWriter(w)
	m := p.metrics
	m.mu.Lock()
	names := make([]string, 0, len(m.apps))
	for name := range m.apps {
		names = append(names, name)
	}
	all := make(map[string]*appMetrics, len(m.apps)+1)
	for k, v := range m.apps {
		all[k] = v
	}
	m.mu.Unlock()
	sort.Strings(names)
	all[""] = m.none
	names = append([]string{""}, names...)

	fmt.Fprintln(bw, "# HELP rivetr_proxy_requests_total Requests answered by the proxy, by app (empty: no app serves the host) and status code.")
	fmt.Fprintln(bw, "# TYPE rivetr_proxy_requests_total counter")
	for _, name := range names {
		am := all[name]
		var codes []int
		am.codes.Range(func(k, _ any) bool { codes = append(codes, k.(int)); return true })
		slices.Sort(codes)
		for _, code := range codes {
			c, _ := am.codes.Load(code)
			fmt.Fprintf(bw, "rivetr_proxy_requests_total{app=%s,code=\"%d\"} %d\n", quoteLabel(name), code, c.(*atomic.Uint64).Load())
		}
	}

	fmt.Fprintln(bw, "# HELP rivetr_proxy_upstream_latency_seconds Time from forwarding a request to the upstream's response headers, by app.")
	fmt.Fprintln(bw, "# TYPE rivetr_proxy_upstream_latency_seconds histogram")
	for _, name := range names[1:] {
		am := all[name]
		// Read the count first: the buckets are then at least as recent,
		// and a histogram must have its +Inf bucket equal to the count.
		var cum uint64
		label := quoteLabel(name)
		for i, le := range latencyBuckets {
			cum += am.buckets[i].Load()
			fmt.Fprintf(bw, "rivetr_proxy_upstream_latency_seconds_bucket{app=%s,le=\"%s\"} %d\n", label, strconv.FormatFloat(le, 'g', -1, 64), cum)
		}
		cum += am.buckets[len(latencyBuckets)].Load()
		fmt.Fprintf(bw, "rivetr_proxy_upstream_latency_seconds_bucket{app=%s,le=\"+Inf\"} %d\n", label, cum)
		fmt.Fprintf(bw, "rivetr_proxy_upstream_latency_seconds_sum{app=%s} %s\n", label, strconv.FormatFloat(float64(am.sumNano.Load())/1e9, 'g', -1, 64))
		fmt.Fprintf(bw, "rivetr_proxy_upstream_latency_seconds_count{app=%s} %d\n", label, cum)
	}

	upgraded, inflight := 0, int64(0)
	p.mu.Lock()
	for _, tg := range p.targets {
		inflight += tg.inflight.Load()
		upgraded += tg.upgrades()
	}
	p.mu.Unlock()
	gauge(bw, "rivetr_proxy_open_connections", "Client connections open to the proxy (HTTP and HTTPS), upgraded ones excluded.", m.conns.Load())
	gauge(bw, "rivetr_proxy_requests_in_flight", "Requests being forwarded to upstreams.", inflight)
	gauge(bw, "rivetr_proxy_upgraded_connections", "Upgraded connections (WebSockets) being relayed.", int64(upgraded))
	routes := p.table.Load()
	gauge(bw, "rivetr_proxy_routes", "Apps with a route.", int64(len(routes.apps)))
	return bw.Flush()
}

func gauge(w io.Writer, name, help string, v int64) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %d\n", name, help, name, name, v)
}

// quoteLabel renders a label value in the text format's escaping.
func quoteLabel(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
