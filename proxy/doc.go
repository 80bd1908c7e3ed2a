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
// Forwarding uses httputil.ReverseProxy on one shared, tuned http.Transport
// (HTTP/1.1 keep-alive to upstreams, a large idle pool per upstream, dial and
// response-header timeouts, pooled 32 KiB copy buffers). WebSocket and other
// Upgrades are relayed; streamed responses (Server-Sent Events, chunked
// bodies) are flushed as they come. The upstream sees X-Forwarded-For (the
// client's address appended to any it sent), X-Forwarded-Proto,
// X-Forwarded-Host, X-Forwarded-Port and X-Request-Id (a valid incoming one is
// kept, else a random one is made); the response carries the same
// X-Request-Id.
//
// Failures get a small HTML page and the status a client or a monitor
// expects: 404 for a host no app serves, 503 for an app with no upstream,
// 502 when the upstream refuses or cannot be reached, 504 when it times out,
// 413 when the body is over Options.MaxBodyBytes. Upstream errors are logged
// at warn with the app, the upstream and the error, never headers or bodies.
//
// Serve and Shutdown run the proxy on listeners with server timeouts suited
// to a front proxy (no write timeout, so streams and WebSockets may last).
package proxy
