package proxy

import (
	"net/http/httputil"
	"strings"
	"sync/atomic"
)

// route is one app's entry in the table: every host of the app points to
// the same *route. It is immutable once published, except for the
// round-robin counter.
type route struct {
	app       string
	hosts     []string    // normalised, as given to SetRoute ("*.x" for wildcards)
	upstreams []*upstream // empty: the app has no running web process
	site      *staticSite // a static site served by the proxy itself
	m         *appMetrics
	next      atomic.Uint32
}

// upstream is one address of a route with the ReverseProxy bound to it, so
// a request needs no per-request context to know where it goes. tg is the
// address's state, shared with the other routes that list it.
type upstream struct {
	addr string
	tg   *target
	rp   *httputil.ReverseProxy
}

// pick returns the next upstream round-robin; nil if there is none.
func (r *route) pick() *upstream {
	switch n := len(r.upstreams); n {
	case 0:
		return nil
	case 1:
		return r.upstreams[0]
	default:
		return r.upstreams[(r.next.Add(1)-1)%uint32(n)]
	}
}

// table is a snapshot of every route. It is never modified after it is
// published; writers build a new one.
type table struct {
	exact map[string]*route // "app.example.com" -> route
	wild  map[string]*route // "example.com" for "*.example.com" -> route
	apps  map[string]*route // app name -> route
}

func newTable() *table {
	return &table{
		exact: map[string]*route{},
		wild:  map[string]*route{},
		apps:  map[string]*route{},
	}
}

// clone copies the maps (not the routes, which are immutable).
func (t *table) clone() *table {
	c := &table{
		exact: make(map[string]*route, len(t.exact)+4),
		wild:  make(map[string]*route, len(t.wild)),
		apps:  make(map[string]*route, len(t.apps)+1),
	}
	for k, v := range t.exact {
		c.exact[k] = v
	}
	for k, v := range t.wild {
		c.wild[k] = v
	}
	for k, v := range t.apps {
		c.apps[k] = v
	}
	return c
}

// lookup finds the route for a normalised host: an exact match, else the
// longest wildcard suffix. It allocates nothing.
func (t *table) lookup(host string) *route {
	if host == "" {
		return nil
	}
	if r, ok := t.exact[host]; ok {
		return r
	}
	if len(t.wild) == 0 {
		return nil
	}
	// a.b.example.com tries b.example.com, then example.com, then com: the
	// first hit is the longest suffix. The host itself is not tried, as
	// "*.example.com" does not match example.com.
	for i := strings.IndexByte(host, '.'); i >= 0; {
		suffix := host[i+1:]
		if r, ok := t.wild[suffix]; ok {
			return r
		}
		j := strings.IndexByte(suffix, '.')
		if j < 0 {
			break
		}
		i += j + 1
	}
	return nil
}

// entry returns the map and key where a normalised host lives.
func (t *table) entry(host string) (map[string]*route, string) {
	if suffix, ok := strings.CutPrefix(host, "*."); ok {
		return t.wild, suffix
	}
	return t.exact, host
}

// normalizeHost lower-cases a Host header, strips its port and a trailing
// dot. It allocates only when the host has upper-case letters.
func normalizeHost(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			h = h[:i+1]
		}
	} else if i := strings.IndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	return strings.ToLower(h)
}

// normalizeRouteHost normalises a configured host; it returns "" for one
// that can never match (empty, a bare "*", or a "*" not in front).
func normalizeRouteHost(h string) string {
	h = strings.TrimSpace(h)
	wildcard := strings.HasPrefix(h, "*.")
	if wildcard {
		h = h[2:]
	}
	h = normalizeHost(h)
	if h == "" || strings.Contains(h, "*") {
		return ""
	}
	if wildcard {
		return "*." + h
	}
	return h
}
