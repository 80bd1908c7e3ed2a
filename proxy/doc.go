// Package proxy is rivetr's reverse proxy: it implements apps.Router and
// http.Handler, routing each request by its Host header to one of the
// upstreams (host:port of an app's web containers) of the app that owns the
// host.
//
// The route table is an immutable map swapped atomically: SetRoute and
// RemoveRoute copy it under a mutex and publish the copy, so a request looks
// its host up without taking a lock, and an app's hosts and upstreams change
// all at once. Hosts match exactly first (lower-cased, port stripped); a
// wildcard host "*.example.com" matches one or more labels in front of
// example.com, the longest wildcard suffix winning. Requests are spread over
// a route's upstreams round-robin.
//
// Forwarding uses httputil.ReverseProxy with one tuned http.Transport per
// upstream address (HTTP/1.1 keep-alive, a large idle pool, dial and
// response-header timeouts) and pooled 32 KiB copy buffers. WebSocket and
// other Upgrades are relayed; streamed responses (Server-Sent Events, chunked
// bodies) are flushed as they come. The upstream sees X-Forwarded-For (the
// client's address appended to any it sent), X-Forwarded-Proto,
// X-Forwarded-Host, X-Forwarded-Port and X-Request-Id (a valid incoming one is
// kept, else a random one is made); the response carries the same
// X-Request-Id.
//
// Failures get a small HTML page and the status a client or a monitor
// expects: 404 for a host no app serves, 503 for an app with no upstream,
// 502 when no upstream of the app can be reached, 504 when it times out,
// 413 when the body is over Options.MaxBodyBytes. Upstream errors are logged
// at warn with the app, the upstream and the error, never headers or bodies.
//
// Each upstream address counts the requests in flight to it and tracks its
// upgraded connections. A request counts itself on the upstream it picked
// and then checks that the upstream is not draining (else it looks its host
// up again), so Drain, which marks the upstream first and reads the count
// second, never misses one. Drain, called after a swap made the old
// upstreams unrouted, waits until their in-flight requests finish (up to a
// timeout), then closes their WebSockets (both ends) and idle keep-alive
// connections (a FIN, no reset) and forgets them; clients' own keep-alive
// connections are the proxy's and carry on to the new upstreams. A request
// whose upstream refuses the connection (a container that just died) is made
// again on another upstream of its host, once per upstream, when its body
// was not read.
//
// Serve and Shutdown run the proxy on listeners with server timeouts suited
// to a front proxy (no write timeout, so streams and WebSockets may last).
package proxy
