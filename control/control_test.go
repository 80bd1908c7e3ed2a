package control

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func startServer(t *testing.T, h Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "rivetr.sock")
	srv, err := Listen(sock, h, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Close(context.Background()) })
	return sock
}

func TestCallStreamsAndExitCode(t *testing.T) {
	sock := startServer(t, func(ctx context.Context, req Request, st Streams) int {
		in, _ := io.ReadAll(st.Stdin)
		io.WriteString(st.Stdout, strings.Join(req.Args, "|")+":"+string(in))
		io.WriteString(st.Stderr, "warn")
		return 42
	})
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, %v", fi.Mode(), err)
	}
	var out, errb bytes.Buffer
	big := strings.Repeat("x", 3<<20) // several frames
	code, err := Call(sock, []string{"a", "b c"}, Streams{Stdin: strings.NewReader(big), Stdout: &out, Stderr: &errb})
	if err != nil {
		t.Fatal(err)
	}
	if code != 42 || out.String() != "a|b c:"+big || errb.String() != "warn" {
		t.Errorf("code %d out %d bytes err %q", code, out.Len(), errb.String())
	}
}

func TestNotRunning(t *testing.T) {
	_, err := Call(filepath.Join(t.TempDir(), "none.sock"), nil, Streams{Stdout: io.Discard, Stderr: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("err = %v", err)
	}
}

func TestSecondDaemonRefusedAndStaleSocketReplaced(t *testing.T) {
	sock := startServer(t, func(context.Context, Request, Streams) int { return 0 })
	if _, err := Listen(sock, nil, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("second listen: %v", err)
	}
	stale := filepath.Join(t.TempDir(), "stale.sock")
	os.WriteFile(stale, nil, 0o600)
	srv, err := Listen(stale, func(context.Context, Request, Streams) int { return 0 }, zerolog.Nop())
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	srv.Close(context.Background())
}

func TestOversizedFrameRefused(t *testing.T) {
	var buf bytes.Buffer
	buf.Write([]byte{kindRequest, 0xff, 0xff, 0xff, 0xff})
	if _, _, err := readFrame(&buf); err == nil {
		t.Fatal("oversized frame accepted")
	}
}
