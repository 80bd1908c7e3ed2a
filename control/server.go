package control

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Request is what the client sends first.
type Request struct {
	Args []string `json:"args"`
	// Env carries the few environment variables a git hook passes on
	// (GIT_DIR, GIT_QUARANTINE_PATH, RIVETR_PUSHER, PWD).
	Env map[string]string `json:"env,omitempty"`
	// Dir is the client's working directory: relative FILE arguments of
	// admin commands are resolved against it, not the daemon's.
	Dir string `json:"dir,omitempty"`
}

// Streams are one command's standard streams.
type Streams struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Handler runs one request and returns its exit status.
type Handler func(ctx context.Context, req Request, st Streams) int

// Server accepts local clients on a unix socket.
type Server struct {
	ln      net.Listener
	path    string
	handler Handler
	log     zerolog.Logger
	wg      sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc
}

// Listen creates the socket at path with mode 0600. A stale socket left by
// a crashed daemon is removed; a live one means another daemon is running.
func Listen(path string, handler Handler, log zerolog.Logger) (*Server, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("another rivetr is already running (socket %s answers)", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	// The umask makes the socket 0600 from its creation, with no window in
	// which another user could connect.
	old := umask(0o177)
	ln, err := net.Listen("unix", path)
	umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod socket %s: %w", path, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{ln: ln, path: path, handler: handler, log: log, ctx: ctx, cancel: cancel}, nil
}

// Serve accepts connections until Close.
func (s *Server) Serve() error {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("accept on %s: %w", s.path, err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(conn)
		}()
	}
}

// Close stops accepting, cancels running commands, waits up to the
// context's deadline for them, and removes the socket.
func (s *Server) Close(ctx context.Context) error {
	err := s.ln.Close()
	os.Remove(s.path)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.cancel()
		<-done
	}
	s.cancel()
	return err
}

func (s *Server) serveConn(conn net.Conn) {
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	kind, payload, err := readFrame(conn)
	if errors.Is(err, io.EOF) {
		return // a liveness probe: connected and closed
	}
	if err != nil || kind != kindRequest {
		s.log.Warn().Err(err).Msg("bad control request")
		return
	}
	conn.SetReadDeadline(time.Time{})
	var req Request
	if err := json.Unmarshal(payload, &req); err != nil {
		s.log.Warn().Err(err).Msg("bad control request")
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()

	stdinR, stdinW := io.Pipe()
	go func() {
		// Relay stdin frames; a dropped client cancels the command.
		defer cancel()
		for {
			kind, data, err := readFrame(conn)
			if err != nil {
				stdinW.CloseWithError(io.EOF)
				return
			}
			switch kind {
			case kindStdin:
				if _, err := stdinW.Write(data); err != nil {
					// The command stopped reading stdin; keep draining
					// frames so a disconnect is still noticed.
					continue
				}
			case kindStdinClose:
				stdinW.Close()
			}
		}
	}()
	var mu sync.Mutex
	st := Streams{
		Stdin:  stdinR,
		Stdout: &frameWriter{mu: &mu, w: conn, kind: kindStdout},
		Stderr: &frameWriter{mu: &mu, w: conn, kind: kindStderr},
	}
	code := s.handler(ctx, req, st)
	stdinR.Close()
	var buf [4]byte
	binary.BigEndian.PutUint32(buf[:], uint32(int32(code)))
	mu.Lock()
	writeFrame(conn, kindExit, buf[:])
	mu.Unlock()
}
