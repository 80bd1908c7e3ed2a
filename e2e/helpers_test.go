package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// waitTimeout bounds every wait for the daemon or a client: generous, since
// these machines are noisy. It is never a performance assertion.
const waitTimeout = 30 * time.Second

// stopTimeout is how long the daemon may take to exit after SIGTERM.
const stopTimeout = 15 * time.Second

// errPrefix starts every error line of the command language.
const errPrefix = " !     "

// rivetrBin is the binary built once by TestMain.
var rivetrBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	for _, tool := range []string{"ssh", "ssh-keygen", "ssh-keyscan", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %s is required (apt-get install openssh-client): %v\n", tool, err)
			return 1
		}
	}
	dir, err := os.MkdirTemp("", "rivetr-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	rivetrBin = filepath.Join(dir, "rivetr")
	build := exec.Command("go", "build", "-o", rivetrBin, "./cmd/rivetr")
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/rivetr: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// result is what one command printed and its exit status.
type result struct {
	Stdout string
	Stderr string
	Code   int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.Code, r.Stdout, r.Stderr)
}

// run runs cmd with stdin (nil for none) and returns its output. Only a
// failure to start or a timeout fails the test; a non-zero exit is a result.
func run(t *testing.T, cmd *exec.Cmd, stdin []byte) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	res := result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.Exited():
		res.Code = exit.ExitCode()
	default:
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, res)
	}
	return res
}

// freePort returns a loopback TCP port that was free a moment ago and that
// no other caller in this test binary has been given. The port comes from
// below the kernel's ephemeral range, so the outgoing connections of the
// tests running in parallel (which take ephemeral ports) cannot occupy it
// before the daemon binds it.
func freePort(t *testing.T) int {
	t.Helper()
	ports.mu.Lock()
	defer ports.mu.Unlock()
	if ports.given == nil {
		ports.given = map[int]bool{}
		ports.low, ports.high = portRange()
	}
	for tries := 0; tries < 1000; tries++ {
		p := ports.low + mrand.IntN(ports.high-ports.low)
		if ports.given[p] {
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		ln.Close()
		ports.given[p] = true
		return p
	}
	t.Fatalf("find a free port: none free in %d-%d after 1000 tries", ports.low, ports.high)
	return 0
}

// ports records the ports freePort has handed out.
var ports struct {
	mu        sync.Mutex
	given     map[int]bool
	low, high int
}

// portRange is where freePort looks: under the ephemeral range
// (net.ipv4.ip_local_port_range) when there is room, else above it.
func portRange() (low, high int) {
	ephLow, ephHigh := 32768, 60999 // Linux's default
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if l, err := strconv.Atoi(f[0]); err == nil {
				ephLow = l
			}
			if h, err := strconv.Atoi(f[1]); err == nil {
				ephHigh = h
			}
		}
	}
	switch {
	case ephLow-10000 >= 2000:
		return 10000, ephLow
	case 65535-ephHigh >= 2000:
		return ephHigh + 1, 65536
	}
	return 1024, 65536 // no room outside it: any unprivileged port
}

// baseEnv is the test's environment without anything that configures
// rivetr or points at the user's home or temp dir.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "RIVETR_") || k == "HOME" || k == "TMPDIR" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// syncBuffer is a bytes.Buffer safe for the daemon's stderr copier and the
// test reading it at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// server is one `rivetr serve` process. Its working directory, HOME and
// TMPDIR are empty temp dirs, so a test can check nothing is written there.
type server struct {
	t        *testing.T
	dataDir  string
	config   string // an empty TOML file, so no /etc/rivetr/rivetr.toml is read
	sshPort  int
	httpPort int
	apiPort  int
	cwd      string
	home     string
	tmp      string
	// extraEnv is added to (and overrides) the daemon's environment.
	extraEnv []string

	cmd     *exec.Cmd
	stderr  *syncBuffer
	done    chan struct{}
	waitErr error
	stopped bool
}

// newServer prepares a daemon on a fresh data dir and free loopback ports;
// start runs it.
func newServer(t *testing.T) *server {
	t.Helper()
	etc := t.TempDir()
	config := filepath.Join(etc, "rivetr.toml")
	if err := os.WriteFile(config, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return &server{
		t:        t,
		dataDir:  t.TempDir(),
		config:   config,
		sshPort:  freePort(t),
		httpPort: freePort(t),
		apiPort:  freePort(t),
		cwd:      t.TempDir(),
		home:     t.TempDir(),
		tmp:      t.TempDir(),
	}
}

// startServer prepares and starts a daemon, stopped when the test ends.
func startServer(t *testing.T) *server {
	t.Helper()
	s := newServer(t)
	s.start()
	return s
}

// sshAddr is the daemon's SSH address.
func (s *server) sshAddr() string { return "127.0.0.1:" + strconv.Itoa(s.sshPort) }

// socket is the daemon's control socket.
func (s *server) socket() string { return filepath.Join(s.dataDir, "rivetr.sock") }

// serveEnv is the daemon's environment; extra entries override.
func (s *server) serveEnv(extra ...string) []string {
	env := append(baseEnv(),
		"HOME="+s.home,
		"TMPDIR="+s.tmp,
		"RIVETR_CONFIG="+s.config,
		"RIVETR_DATA_DIR="+s.dataDir,
		"RIVETR_SSH_ADDR="+s.sshAddr(),
		"RIVETR_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(s.httpPort),
		"RIVETR_HTTPS_ADDR=",
		"RIVETR_API_ADDR=127.0.0.1:"+strconv.Itoa(s.apiPort),
		"RIVETR_LOG_LEVEL=debug",
	)
	return append(env, extra...)
}

// start runs `rivetr serve` and waits until its socket accepts. It may be
// called again after stop, on the same data dir and ports.
func (s *server) start() {
	t := s.t
	t.Helper()
	s.stderr = &syncBuffer{}
	s.done = make(chan struct{})
	s.stopped = false
	s.cmd = exec.Command(rivetrBin, "serve")
	s.cmd.Dir = s.cwd
	s.cmd.Env = s.serveEnv(s.extraEnv...)
	s.cmd.Stdout = s.stderr
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start rivetr serve: %v", err)
	}
	cmd, stderr, done := s.cmd, s.stderr, s.done
	go func() {
		s.waitErr = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("rivetr serve output:\n%s", stderr.String())
		}
	})
	t.Cleanup(s.stop)

	deadline := time.Now().Add(waitTimeout)
	for {
		select {
		case <-s.done:
			t.Fatalf("rivetr serve exited before it was ready: %v\n%s", s.waitErr, s.stderr.String())
		default:
		}
		if c, err := net.Dial("unix", s.socket()); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("rivetr serve did not accept on %s within %v\n%s", s.socket(), waitTimeout, s.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and checks the daemon exits 0 in time. It does
// nothing when the daemon is already stopped.
func (s *server) stop() {
	t := s.t
	t.Helper()
	if s.stopped {
		return
	}
	s.stopped = true
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("send SIGTERM to rivetr serve: %v", err)
	}
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		s.cmd.Process.Kill()
		<-s.done
		t.Errorf("rivetr serve did not exit within %v of SIGTERM", stopTimeout)
		return
	}
	if s.waitErr != nil {
		t.Errorf("rivetr serve did not exit cleanly on SIGTERM: %v\n%s", s.waitErr, s.stderr.String())
	}
}

// cliEnv is the local CLI's environment: the same data dir as the daemon.
func (s *server) cliEnv() []string {
	return append(baseEnv(),
		"HOME="+s.home,
		"TMPDIR="+s.tmp,
		"RIVETR_CONFIG="+s.config,
		"RIVETR_DATA_DIR="+s.dataDir,
	)
}

// cli runs `rivetr ARGS...` (the local CLI) with stdin (nil for none).
func (s *server) cli(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	return s.cliIn(t, s.cwd, stdin, args...)
}

// cliIn runs the local CLI in directory dir.
func (s *server) cliIn(t *testing.T, dir string, stdin []byte, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, rivetrBin, args...)
	cmd.Dir = dir
	cmd.Env = s.cliEnv()
	return run(t, cmd, stdin)
}

// mustCLI runs the local CLI and fails the test unless it exits 0.
func (s *server) mustCLI(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	res := s.cli(t, stdin, args...)
	if res.Code != 0 {
		t.Fatalf("rivetr %s: %s", strings.Join(args, " "), res)
	}
	return res
}

// keyPair is an ed25519 key made by the real ssh-keygen.
type keyPair struct {
	Private string // path
	Public  string // path
}

// newKey generates an ed25519 key pair in a fresh temp dir.
func newKey(t *testing.T, name string) keyPair {
	t.Helper()
	dir := t.TempDir()
	priv := filepath.Join(dir, name)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name+"@e2e", "-f", priv)
	if res := run(t, cmd, nil); res.Code != 0 {
		t.Fatalf("ssh-keygen: %s", res)
	}
	return keyPair{Private: priv, Public: priv + ".pub"}
}

// fingerprint returns the SHA256 fingerprint of a public key file, as
// ssh-keygen prints it.
func fingerprint(t *testing.T, pub string) string {
	t.Helper()
	res := run(t, exec.Command("ssh-keygen", "-l", "-E", "sha256", "-f", pub), nil)
	fields := strings.Fields(res.Stdout)
	if res.Code != 0 || len(fields) < 2 {
		t.Fatalf("ssh-keygen -l: %s", res)
	}
	return fields[1]
}

// client runs commands over SSH with one key. Its HOME is an empty temp
// dir, so no user configuration of the machine running the tests applies.
type client struct {
	srv  *server
	key  keyPair
	home string
	user string // the SSH user name; any is accepted
}

// setup starts a daemon, makes a key and adds it as "admin" with the
// local CLI, and returns an SSH client using that key.
func setup(t *testing.T) (*server, *client) {
	t.Helper()
	srv := startServer(t)
	key := newKey(t, "admin")
	srv.mustCLI(t, nil, "ssh-keys:add", "admin", key.Public)
	return srv, srv.client(t, key)
}

// client returns an SSH client for the daemon using key.
func (s *server) client(t *testing.T, key keyPair) *client {
	return &client{srv: s, key: key, home: t.TempDir(), user: "rivetr"}
}

// shellQuote quotes s for a POSIX shell: the SSH client joins its
// arguments with spaces and the server splits them shell-style.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// sshCommand builds the real OpenSSH client call for args.
func (c *client) sshCommand(ctx context.Context, args ...string) *exec.Cmd {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = shellQuote(a)
	}
	cmd := exec.CommandContext(ctx, "ssh",
		"-F", "/dev/null",
		"-p", strconv.Itoa(c.srv.sshPort),
		"-i", c.key.Private,
		"-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes",
		"-o", "IdentitiesOnly=yes",
		"-o", "LogLevel=ERROR",
		"-o", "ConnectTimeout=30",
		c.user+"@127.0.0.1",
		strings.Join(quoted, " "),
	)
	cmd.Env = append(baseEnv(), "HOME="+c.home)
	return cmd
}

// ssh runs `ssh rivetr@127.0.0.1 ARGS...` with stdin (nil for none).
func (c *client) ssh(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	return run(t, c.sshCommand(ctx, args...), stdin)
}

// must runs a command over SSH and fails the test unless it exits 0.
func (c *client) must(t *testing.T, args ...string) result {
	t.Helper()
	return c.mustIn(t, nil, args...)
}

// mustIn is must with stdin.
func (c *client) mustIn(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	res := c.ssh(t, stdin, args...)
	if res.Code != 0 {
		t.Fatalf("ssh %s: %s", strings.Join(args, " "), res)
	}
	return res
}

// appNames returns the apps from `apps:list --format json`.
func (c *client) appNames(t *testing.T) []string {
	t.Helper()
	res := c.must(t, "apps:list", "--format", "json")
	var list []struct {
		Name      string `json:"name"`
		CreatedAt int64  `json:"created_at"`
		Locked    bool   `json:"locked"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &list); err != nil {
		t.Fatalf("apps:list --format json: %v\n%s", err, res)
	}
	names := make([]string, len(list))
	for i, a := range list {
		names[i] = a.Name
	}
	return names
}

// env returns an app's (or, with "--global", the global) config decoded
// from `config:export --format json`.
func (c *client) env(t *testing.T, scope ...string) map[string]string {
	t.Helper()
	args := append([]string{"config:export"}, scope...)
	res := c.must(t, append(args, "--format", "json")...)
	env := map[string]string{}
	if err := json.Unmarshal([]byte(res.Stdout), &env); err != nil {
		t.Fatalf("config:export --format json: %v\n%s", err, res)
	}
	return env
}

// wantError checks a refused command: non-zero exit (code, unless -1 means
// any), and stderr in the command language's error shape containing msg.
func wantError(t *testing.T, res result, code int, msg string) {
	t.Helper()
	if res.Code == 0 || (code >= 0 && res.Code != code) {
		want := "non-zero"
		if code >= 0 {
			want = strconv.Itoa(code)
		}
		t.Errorf("exit %d, want %s\n%s", res.Code, want, res)
	}
	if !strings.HasPrefix(res.Stderr, errPrefix) {
		t.Errorf("stderr does not start with %q:\n%s", errPrefix, res)
	}
	if !strings.Contains(res.Stderr, msg) {
		t.Errorf("stderr does not mention %q:\n%s", msg, res)
	}
}

// wantOK checks a command exited 0.
func wantOK(t *testing.T, res result) {
	t.Helper()
	if res.Code != 0 {
		t.Errorf("exit %d, want 0\n%s", res.Code, res)
	}
}

// nonEmptyLines splits s into its non-empty lines.
func nonEmptyLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// dirEntries lists what is left in dir, recursively, for error messages.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != dir {
			rel, _ := filepath.Rel(dir, path)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return out
}

// writeFile writes a file or fails the test.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// readFile reads a file or fails the test.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
