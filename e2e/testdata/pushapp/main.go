// Command pushapp is the app the end-to-end tests push to rivetr: a static
// HTTP server for a FROM scratch image (no shell, nothing else), standard
// library only.
//
// Run without arguments it serves on $PORT (default 5000):
//
//	/               "hello $VERSION_TAG"
//	/env/NAME       the value of the environment variable NAME
//	/slow?ms=N      "slow $VERSION_TAG" after N milliseconds
//	/status/N       status N
//	/ws             a WebSocket (RFC 6455) echo of text and binary messages
//
// and logs one line per request to stdout ("request GET /path"). Requests
// are logged when they arrive. $START_DELAY (a Go duration) delays
// listening, so a test can keep a deploy in progress for a while.
//
// With arguments it is a one-off command, since FROM scratch images have no
// shell or tools:
//
//	pushapp exit N            print "exit N", exit with status N
//	pushapp printenv NAME     print $NAME
//	pushapp echo WORDS...     print the words
//	pushapp cat               copy stdin to stdout
//	pushapp sleep DURATION    sleep, then exit 0
//	pushapp worker            a process without a port: a line every second
package main

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	// PID 1 in a container: exit promptly on SIGTERM.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		os.Exit(0)
	}()
	if len(os.Args) > 1 {
		os.Exit(command(os.Args[1], os.Args[2:]))
	}
	serve()
}

// command runs a one-off mode and returns its exit status.
func command(name string, args []string) int {
	switch name {
	case "exit":
		code := 0
		if len(args) > 0 {
			code, _ = strconv.Atoi(args[0])
		}
		fmt.Printf("exit %d\n", code)
		return code
	case "printenv":
		if len(args) != 1 {
			fmt.Fprintln(os.Stderr, "usage: printenv NAME")
			return 2
		}
		v, ok := os.LookupEnv(args[0])
		if !ok {
			return 1
		}
		fmt.Println(v)
		return 0
	case "echo":
		fmt.Println(strings.Join(args, " "))
		return 0
	case "cat":
		if _, err := io.Copy(os.Stdout, os.Stdin); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	case "sleep":
		d, err := time.ParseDuration(strings.Join(args, ""))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		time.Sleep(d)
		return 0
	case "worker":
		fmt.Printf("worker %s started\n", os.Getenv("DYNO"))
		for i := 1; ; i++ {
			time.Sleep(time.Second)
			fmt.Printf("worker tick %d\n", i)
		}
	}
	fmt.Fprintf(os.Stderr, "pushapp: unknown command %q\n", name)
	return 127
}

func serve() {
	if d, err := time.ParseDuration(os.Getenv("START_DELAY")); err == nil {
		time.Sleep(d)
	}
	version := os.Getenv("VERSION_TAG")
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s\n", version)
	})
	mux.HandleFunc("/env/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, os.Getenv(strings.TrimPrefix(r.URL.Path, "/env/")))
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		fmt.Fprintf(w, "slow %s\n", version)
	})
	mux.HandleFunc("/status/", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
		if err != nil || code < 200 || code > 599 {
			code = http.StatusBadRequest
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, "status %d\n", code)
	})
	mux.HandleFunc("/ws", websocketEcho)
	logged := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Printf("request %s %s\n", r.Method, r.URL.Path)
		mux.ServeHTTP(w, r)
	})
	port := os.Getenv("PORT")
	if port == "" {
		port = "5000"
	}
	if err := http.ListenAndServe(":"+port, logged); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// websocketGUID is RFC 6455's magic string for Sec-WebSocket-Accept.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// WebSocket opcodes.
const (
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

// websocketEcho answers a WebSocket handshake and echoes every text and
// binary message until the client closes (or the connection breaks).
func websocketEcho(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || key == "" {
		http.Error(w, "expected a WebSocket handshake", http.StatusBadRequest)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "cannot hijack", http.StatusInternalServerError)
		return
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	sum := sha1.Sum([]byte(key + websocketGUID))
	fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		base64.StdEncoding.EncodeToString(sum[:]))
	if err := rw.Flush(); err != nil {
		return
	}
	for {
		op, payload, err := readFrame(rw.Reader)
		if err != nil {
			return
		}
		switch op {
		case opText, opBinary:
			err = writeFrame(conn, op, payload)
		case opPing:
			err = writeFrame(conn, opPong, payload)
		case opClose:
			writeFrame(conn, opClose, payload)
			return
		}
		if err != nil {
			return
		}
	}
}

// readFrame reads one frame (unmasking it if masked). Fragmented messages
// are not supported: each frame is taken as a message.
func readFrame(r *bufio.Reader) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	op := h[0] & 0x0f
	masked := h[1]&0x80 != 0
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 1<<20 {
		return 0, nil, errors.New("frame too large")
	}
	var mask [4]byte
	if masked {
		if _, err := io.ReadFull(r, mask[:]); err != nil {
			return 0, nil, err
		}
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= mask[i%4]
		}
	}
	return op, payload, nil
}

// writeFrame writes one unmasked final frame, as a server does.
func writeFrame(w io.Writer, op byte, payload []byte) error {
	b := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n < 1<<16:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	_, err := w.Write(append(b, payload...))
	return err
}
