package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// rawBackend is an upstream scripted at the byte level: for each request
// head it reads, answer writes the response (and may close the
// connection by returning false).
func rawBackend(t *testing.T, answer func(head string, w io.Writer) bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					var head strings.Builder
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						head.WriteString(line)
						if line == "\r\n" {
							break
						}
					}
					if !answer(head.String(), c) {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// rawClient sends raw bytes to the proxy and reads what comes back until
// the proxy closes or the deadline passes.
func rawExchange(t *testing.T, addr, request string, wait time.Duration) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	io.WriteString(c, request)
	b, _ := io.ReadAll(c)
	return string(b)
}

func TestFastPathFraming(t *testing.T) {
	addr := rawBackend(t, func(head string, w io.Writer) bool {
		path := strings.Fields(head)[1]
		switch path {
		case "/chunked":
			io.WriteString(w, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n")
		case "/eof":
			io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
			return false
		case "/head":
			io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
		case "/nocontent":
			io.WriteString(w, "HTTP/1.1 204 No Content\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\n")
		case "/hints":
			io.WriteString(w, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		case "/hop":
			io.WriteString(w, "HTTP/1.1 200 OK\r\nConnection: X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nX-Request-Id: upstream\r\nContent-Length: 2\r\n\r\nok")
		case "/bad":
			io.WriteString(w, "HTTP/1.1 2x0 Nope\r\n\r\n")
		case "/huge":
			io.WriteString(w, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("a", upstreamBufSize)+"\r\nContent-Length: 0\r\n\r\n")
		case "/echo":
			io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(head))+"\r\n\r\n"+head)
		default:
			io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
		return true
	})
	tp := startProxy(t, zerolog.Nop(), Options{})
	tp.SetRoute("app", []string{"app.example.com"}, []string{addr})

	get := func(path, extra string) string {
		return rawExchange(t, tp.addr, "GET "+path+" HTTP/1.1\r\nHost: app.example.com\r\n"+extra+"Connection: close\r\n\r\n", 5*time.Second)
	}
	for _, tc := range []struct {
		name, got string
		want      []string
		not       []string
	}{
		{"chunked passes through with trailers", get("/chunked", ""), []string{"Transfer-Encoding: chunked\r\n", "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n"}, nil},
		{"body until EOF is rechunked", get("/eof", ""), []string{"Transfer-Encoding: chunked\r\n", "d\r\nuntil the end\r\n0\r\n\r\n"}, nil},
		{"204 has no body and keeps its Date", get("/nocontent", ""), []string{"HTTP/1.1 204 No Content\r\n", "Date: Mon, 01 Jan 2024"}, []string{"Transfer-Encoding"}},
		{"1xx relayed before the response", get("/hints", ""), []string{"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\n", "\r\n\r\nok"}, nil},
		{"hop-by-hop headers dropped", get("/hop", ""), []string{"Content-Length: 2\r\n", "Connection: close\r\n"}, []string{"X-Secret", "Keep-Alive", "X-Request-Id: upstream"}},
		{"malformed response is 502", get("/bad", ""), []string{"HTTP/1.1 502 Bad Gateway\r\n"}, nil},
		{"over-long response head is 502", get("/huge", ""), []string{"HTTP/1.1 502 Bad Gateway\r\n"}, nil},
		{"request hop-by-hop headers dropped", bodyOf(get("/echo", "Keep-Alive: 1\r\nProxy-Connection: x\r\nTE: trailers, deflate\r\nX-Keep: yes\r\n")), []string{"X-Keep: yes\r\n", "Te: trailers\r\n", "X-Forwarded-Proto: http\r\n"}, []string{"Keep-Alive", "Proxy-Connection", "deflate", "Connection:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, w := range tc.want {
				if !strings.Contains(tc.got, w) {
					t.Errorf("response lacks %q:\n%s", w, tc.got)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(tc.got, w) {
					t.Errorf("response has %q:\n%s", w, tc.got)
				}
			}
		})
	}

	t.Run("HEAD reads no body", func(t *testing.T) {
		got := rawExchange(t, tp.addr, "HEAD /head HTTP/1.1\r\nHost: app.example.com\r\n\r\nGET / HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n", 5*time.Second)
		if !strings.Contains(got, "Content-Length: 1234\r\n") || !strings.HasSuffix(got, "\r\n\r\nok") || strings.Count(got, "HTTP/1.1 200") != 2 {
			t.Errorf("HEAD then GET:\n%s", got)
		}
	})
	t.Run("pipelined requests answered in order", func(t *testing.T) {
		got := rawExchange(t, tp.addr, "GET /echo HTTP/1.1\r\nHost: app.example.com\r\nX-N: 1\r\n\r\nPOST /echo HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 3\r\nX-N: 2\r\n\r\nabcGET /chunked HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n", 5*time.Second)
		i1, i2, i3 := strings.Index(got, "X-N: 1"), strings.Index(got, "X-N: 2"), strings.Index(got, "hello")
		if i1 < 0 || i2 < i1 || i3 < i2 {
			t.Errorf("pipelined:\n%s", got)
		}
	})
}

// bodyOf is what follows the first head of a raw response.
func bodyOf(resp string) string {
	_, body, _ := strings.Cut(resp, "\r\n\r\n")
	return body
}

// A keep-alive connection the upstream closed while idle is noticed when
// it is used again, and the request goes out again on a new one.
func TestFastPathRetriesStaleConnection(t *testing.T) {
	var served atomic.Int32
	addr := rawBackend(t, func(head string, w io.Writer) bool {
		served.Add(1)
		io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return false // close after every response, without saying so
	})
	tp := startProxy(t, zerolog.Nop(), Options{})
	tp.SetRoute("app", []string{"app.example.com"}, []string{addr})
	for i := range 5 {
		if res := tp.do(t, "POST", "app.example.com", "/", strings.NewReader("body"), nil); res.status != 200 || res.body != "ok" {
			t.Fatalf("request %d: %d %q", i, res.status, res.body)
		}
		time.Sleep(20 * time.Millisecond) // let the close arrive
	}
	if n := served.Load(); n != 5 {
		t.Errorf("upstream served %d requests, want 5", n)
	}
}

// Requests the fast path does not take still work: a body larger than
// its buffer, chunked uploads, HTTP/1.0, Expect.
func TestHandOffToNetHTTP(t *testing.T) {
	addr := backend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Proto+" "+strconv.Itoa(len(b)))
	})
	tp := startProxy(t, zerolog.Nop(), Options{})
	tp.SetRoute("app", []string{"app.example.com"}, []string{addr})
	if res := tp.do(t, "POST", "app.example.com", "/", strings.NewReader(strings.Repeat("x", 3*clientBufSize)), nil); res.body != "HTTP/1.1 "+strconv.Itoa(3*clientBufSize) {
		t.Errorf("large body: %d %q", res.status, res.body)
	}
	got := rawExchange(t, tp.addr, "POST / HTTP/1.1\r\nHost: app.example.com\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 5*time.Second)
	if !strings.HasSuffix(got, "HTTP/1.1 3") {
		t.Errorf("chunked upload:\n%s", got)
	}
	got = rawExchange(t, tp.addr, "GET / HTTP/1.0\r\nHost: app.example.com\r\n\r\n", 5*time.Second)
	if !strings.HasPrefix(got, "HTTP/1.0 200") || !strings.HasSuffix(got, "HTTP/1.1 0") {
		t.Errorf("HTTP/1.0:\n%s", got)
	}
	got = rawExchange(t, tp.addr, "GET / HTTP/1.1\r\nHost: nobody.example.com\r\nConnection: close\r\n\r\n", 5*time.Second)
	if !strings.HasPrefix(got, "HTTP/1.1 404") {
		t.Errorf("unknown host:\n%s", got)
	}
}
