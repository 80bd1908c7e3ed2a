package proxy

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestMetrics: requests are counted by app and status code (the proxy's
// own error pages included), upstream latency lands in the histogram, and
// the gauges are there.
func TestMetrics(t *testing.T) { bothPaths(t, testMetrics) }

func testMetrics(t *testing.T, opts Options) {
	tp := startProxy(t, zerolog.Nop(), opts)
	closed := closedAddr(t)
	slow := backend(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(30 * time.Millisecond)
		w.WriteHeader(http.StatusTeapot)
	})
	tp.SetRoute("web", []string{"web.example.com"}, []string{named(t, "web")})
	tp.SetRoute("slow", []string{"slow.example.com"}, []string{slow})
	tp.SetRoute("down", []string{"down.example.com"}, []string{closed})
	tp.SetRoute("idle", []string{"idle.example.com"}, nil)
	for range 3 {
		tp.get(t, "web.example.com")
	}
	tp.get(t, "slow.example.com")
	tp.get(t, "down.example.com")
	tp.get(t, "idle.example.com")
	tp.get(t, "nobody.example.com")

	var b strings.Builder
	if err := tp.WriteMetrics(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"# TYPE rivetr_proxy_requests_total counter",
		`rivetr_proxy_requests_total{app="web",code="200"} 3`,
		`rivetr_proxy_requests_total{app="slow",code="418"} 1`,
		`rivetr_proxy_requests_total{app="down",code="502"} 1`,
		`rivetr_proxy_requests_total{app="idle",code="503"} 1`,
		`rivetr_proxy_requests_total{app="",code="404"} 1`,
		"# TYPE rivetr_proxy_upstream_latency_seconds histogram",
		`rivetr_proxy_upstream_latency_seconds_count{app="web"} 3`,
		`rivetr_proxy_upstream_latency_seconds_bucket{app="slow",le="0.025"} 0`,
		`rivetr_proxy_upstream_latency_seconds_bucket{app="slow",le="+Inf"} 1`,
		`rivetr_proxy_upstream_latency_seconds_count{app="down"} 0`,
		"rivetr_proxy_requests_in_flight 0",
		"rivetr_proxy_upgraded_connections 0",
		"rivetr_proxy_routes 4",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	if !strings.Contains(out, "\nrivetr_proxy_open_connections ") {
		t.Error("metrics lack rivetr_proxy_open_connections")
	}
	if t.Failed() {
		t.Log(out)
	}
}
