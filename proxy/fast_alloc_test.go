package proxy

import (
	"bufio"
	"io"
	"net"
	"testing"

	"github.com/rs/zerolog"
)

// TestFastPathDoesNotAllocate: a keep-alive request on the fast path
// allocates nothing (client, proxy and upstream all run in this process,
// and the raw client and upstream here allocate nothing either).
func TestFastPathDoesNotAllocate(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nDate: x\r\n\r\nok")
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		br := bufio.NewReader(c)
		for {
			for {
				l, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(l) == 2 {
					break
				}
			}
			c.Write(resp)
		}
	}()
	tp := startProxy(t, zerolog.Nop(), Options{})
	tp.SetRoute("app", []string{"app.example.com"}, []string{ln.Addr().String()})
	c, _ := net.Dial("tcp", tp.addr)
	defer c.Close()
	req := []byte("GET / HTTP/1.1\r\nHost: app.example.com\r\nUser-Agent: x\r\n\r\n")
	buf := make([]byte, 4096)
	one := func() {
		c.Write(req)
		n := 0
		for {
			k, err := c.Read(buf[n:])
			if err != nil && err != io.EOF {
				t.Fatal(err)
			}
			n += k
			if n >= 2 && string(buf[n-2:n]) == "ok" {
				return
			}
		}
	}
	for range 100 {
		one()
	}
	if n := testing.AllocsPerRun(2000, one); n > 0.5 {
		t.Errorf("%v allocations per request, want 0", n)
	}
}
