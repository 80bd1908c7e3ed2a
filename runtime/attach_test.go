package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/rivetr/rivetr/apps"
)

// The tool image runs a static program that performs its arguments in
// order:
//
//	out=TEXT     TEXT and a newline on stdout
//	err=TEXT     TEXT and a newline on stderr
//	env=NAME     the variable's value on stdout
//	cat=FILE     the file on stdout
//	write=F:TEXT write TEXT to file F
//	echo         copy stdin to stdout until EOF
//	lines=N      "line 1" ... "line N" on stdout
//	sleep=DUR    sleep (time.ParseDuration)
//	exit=N       exit with status N
//	tty          "tty" if stdout is a terminal, else "notty"
//
// A failed step exits 1; SIGTERM exits 0 at once.
const toolSource = `package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	go func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
		<-c
		os.Exit(0)
	}()
	for _, op := range os.Args[1:] {
		name, arg, _ := strings.Cut(op, "=")
		switch name {
		case "out":
			fmt.Println(arg)
		case "err":
			fmt.Fprintln(os.Stderr, arg)
		case "env":
			fmt.Println(os.Getenv(arg))
		case "cat":
			b, err := os.ReadFile(arg)
			check(err)
			os.Stdout.Write(b)
		case "write":
			f, text, _ := strings.Cut(arg, ":")
			check(os.WriteFile(f, []byte(text), 0o644))
		case "echo":
			_, err := io.Copy(os.Stdout, os.Stdin)
			check(err)
		case "lines":
			n, err := strconv.Atoi(arg)
			check(err)
			for i := 1; i <= n; i++ {
				fmt.Printf("line %d\n", i)
			}
		case "sleep":
			d, err := time.ParseDuration(arg)
			check(err)
			time.Sleep(d)
		case "exit":
			n, err := strconv.Atoi(arg)
			check(err)
			os.Exit(n)
		case "tty":
			var t syscall.Termios
			if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, 1, syscall.TCGETS, uintptr(unsafe.Pointer(&t))); errno == 0 {
				fmt.Println("tty")
			} else {
				fmt.Println("notty")
			}
		default:
			fmt.Fprintln(os.Stderr, "unknown step", op)
			os.Exit(2)
		}
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
`

var toolBin struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// toolBinary compiles the tool, once per run, for Linux.
func toolBinary(t *testing.T) string {
	t.Helper()
	b := &toolBin
	b.once.Do(func() {
		b.dir, b.err = os.MkdirTemp("", "rivetr-engine-tool-")
		if b.err != nil {
			return
		}
		src := filepath.Join(b.dir, "src")
		os.MkdirAll(src, 0o755)
		os.WriteFile(filepath.Join(src, "go.mod"), []byte("module rivetrtool\n\ngo 1.21\n"), 0o644)
		os.WriteFile(filepath.Join(src, "main.go"), []byte(toolSource), 0o644)
		b.path = filepath.Join(b.dir, "tool")
		cmd := exec.Command("go", "build", "-trimpath", "-o", b.path, ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOWORK=off", "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build tool: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// toolFixture is an engine on a network of its own with the tool image
// built, and the run's unique id, which names and labels all it creates.
type toolFixture struct {
	e   *Engine
	run string
	tag string
}

func newToolFixture(t *testing.T) *toolFixture {
	t.Helper()
	e := testEngine(t, Options{})
	run := uniq(t)
	bin, err := os.ReadFile(toolBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY tool /tool\nCMD [\"/tool\", \"sleep=1h\"]\n"), 0o644)
	if err := os.WriteFile(filepath.Join(dir, "tool"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	f := &toolFixture{e: e, run: run, tag: "rivetr-test/tool-" + run + ":1"}
	t.Cleanup(func() {
		ctx := context.Background()
		// Anything a failed test left behind, then the image.
		left, err := e.List(ctx, map[string]string{"rivetr.test": run})
		if err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, c := range left {
			if err := e.Remove(ctx, c.ID); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		if err := e.RemoveImage(ctx, f.tag); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	out := &writeLog{}
	if err := e.BuildImage(context.Background(), apps.ImageBuild{Dir: dir, Tag: f.tag, Labels: map[string]string{"rivetr.test": run}, Out: out}); err != nil {
		t.Fatalf("BuildImage: %v\n%s", err, out)
	}
	return f
}

// spec is a container spec running the tool with steps, named uniquely
// and labelled with the run.
func (f *toolFixture) spec(t *testing.T, steps ...string) apps.ContainerSpec {
	t.Helper()
	return apps.ContainerSpec{
		Name:          "rivetr-test-" + f.run + "-" + uniq(t),
		Image:         f.tag,
		Cmd:           append([]string{"/tool"}, steps...),
		Labels:        map[string]string{"rivetr.test": f.run, apps.LabelApp: "tool-" + f.run},
		RestartPolicy: "no",
	}
}

// start runs spec detached and removes the container at cleanup.
func (f *toolFixture) start(t *testing.T, spec apps.ContainerSpec) apps.Container {
	t.Helper()
	t.Cleanup(func() {
		if err := f.e.Remove(context.Background(), spec.Name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	c, err := f.e.Run(context.Background(), spec)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return c
}

// assertGone fails unless the container named name no longer exists.
func (f *toolFixture) assertGone(t *testing.T, name string) {
	t.Helper()
	if c, err := f.e.Inspect(context.Background(), name); !errors.Is(err, ErrNotFound) {
		t.Errorf("container %s left behind: %+v, %v", name, c, err)
	}
}

// attached runs spec with RunAttached and returns exit code, stdout and
// stderr.
func (f *toolFixture) attached(t *testing.T, spec apps.ContainerSpec, stdin *strings.Reader) (int, string, string) {
	t.Helper()
	var stdout, stderr writeLog
	st := apps.Streams{Stdout: &stdout, Stderr: &stderr}
	if stdin != nil {
		st.Stdin = stdin
	}
	code, err := f.e.RunAttached(context.Background(), spec, st)
	if err != nil {
		t.Fatalf("RunAttached %v: %v\nstdout: %s\nstderr: %s", spec.Cmd, err, stdout.String(), stderr.String())
	}
	f.assertGone(t, spec.Name)
	return code, stdout.String(), stderr.String()
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("reader went away") }

func TestRunAttached(t *testing.T) {
	f := newToolFixture(t)
	ctx := context.Background()

	t.Run("output, environment and exit code", func(t *testing.T) {
		spec := f.spec(t, "out=hello", "err=oops", "env=GREETING", "exit=3")
		spec.Env = map[string]string{"GREETING": "hi there"}
		code, out, errOut := f.attached(t, spec, nil)
		if code != 3 || out != "hello\nhi there\n" || errOut != "oops\n" {
			t.Errorf("code %d, stdout %q, stderr %q; want 3, \"hello\\nhi there\\n\", \"oops\\n\"", code, out, errOut)
		}
	})

	t.Run("stdin echoed until EOF", func(t *testing.T) {
		var in strings.Builder
		for i := range 20000 {
			fmt.Fprintf(&in, "input line %d\n", i)
		}
		spec := f.spec(t, "echo", "out=done")
		spec.Stdin = true
		code, out, errOut := f.attached(t, spec, strings.NewReader(in.String()))
		if code != 0 || out != in.String()+"done\n" || errOut != "" {
			t.Errorf("code %d, %d bytes of stdout (want %d), stderr %q", code, len(out), in.Len()+5, errOut)
		}
	})

	t.Run("stdin open but no reader", func(t *testing.T) {
		spec := f.spec(t, "echo", "out=done")
		spec.Stdin = true
		if code, out, _ := f.attached(t, spec, nil); code != 0 || out != "done\n" {
			t.Errorf("code %d, stdout %q", code, out)
		}
	})

	t.Run("no stdin", func(t *testing.T) {
		code, out, _ := f.attached(t, f.spec(t, "echo", "out=done"), strings.NewReader("ignored"))
		if code != 0 || out != "done\n" {
			t.Errorf("code %d, stdout %q; want stdin closed", code, out)
		}
	})

	t.Run("all output before return", func(t *testing.T) {
		code, out, _ := f.attached(t, f.spec(t, "lines=30000", "err=end"), nil)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if code != 0 || len(lines) != 30000 || lines[len(lines)-1] != "line 30000" {
			t.Errorf("code %d, %d lines, last %q", code, len(lines), lines[len(lines)-1])
		}
	})

	t.Run("terminal", func(t *testing.T) {
		spec := f.spec(t, "tty", "err=to-stderr")
		spec.TTY = true
		code, out, errOut := f.attached(t, spec, nil)
		if code != 0 || !strings.HasPrefix(out, "tty\r\n") || !strings.Contains(out, "to-stderr") || errOut != "" {
			t.Errorf("code %d, stdout %q, stderr %q; want a terminal on stdout and stderr", code, out, errOut)
		}
		code, out, _ = f.attached(t, f.spec(t, "tty"), nil)
		if code != 0 || out != "notty\n" {
			t.Errorf("without TTY: code %d, stdout %q", code, out)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		spec := f.spec(t, "out=started", "sleep=1h")
		var out writeLog
		go func() {
			for !strings.Contains(out.String(), "started") {
				time.Sleep(20 * time.Millisecond)
			}
			cancel()
		}()
		begin := time.Now()
		code, err := f.e.RunAttached(ctx, spec, apps.Streams{Stdout: &out})
		if !errors.Is(err, context.Canceled) || code != -1 {
			t.Errorf("RunAttached = %d, %v; want -1, context.Canceled", code, err)
		}
		if d := time.Since(begin); d > 20*time.Second {
			t.Errorf("cancelled RunAttached took %s", d)
		}
		f.assertGone(t, spec.Name)
	})

	t.Run("output not writable", func(t *testing.T) {
		spec := f.spec(t, "out=x", "sleep=1h")
		code, err := f.e.RunAttached(ctx, spec, apps.Streams{Stdout: failingWriter{}})
		if err == nil || !strings.Contains(err.Error(), "reader went away") || code != -1 {
			t.Errorf("RunAttached = %d, %v; want the write error", code, err)
		}
		f.assertGone(t, spec.Name)
	})

	t.Run("start fails", func(t *testing.T) {
		spec := f.spec(t)
		spec.Cmd = []string{"/no/such/binary"}
		code, err := f.e.RunAttached(ctx, spec, apps.Streams{})
		if err == nil {
			// Podman may start the container and report the failure as
			// its exit status.
			if code == 0 {
				t.Errorf("RunAttached of a missing binary: exit 0")
			}
		} else if !strings.HasPrefix(err.Error(), f.e.Name()+": start container "+spec.Name+": ") {
			t.Errorf("error = %v", err)
		}
		t.Logf("missing binary: %d, %v", code, err)
		f.assertGone(t, spec.Name)
	})

	t.Run("invalid spec", func(t *testing.T) {
		spec := f.spec(t, "out=x")
		spec.Mounts = []apps.Mount{{Source: filepath.Join(t.TempDir(), "missing"), Target: "/data"}}
		if _, err := f.e.RunAttached(ctx, spec, apps.Streams{}); err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("bind mount of a missing path: %v", err)
		}
		f.assertGone(t, spec.Name)
	})

	if left, err := f.e.List(ctx, map[string]string{"rivetr.test": f.run}); err != nil || len(left) != 0 {
		t.Errorf("containers left: %+v, %v", left, err)
	}
}

func TestWaitAndLogs(t *testing.T) {
	f := newToolFixture(t)
	ctx := context.Background()
	// The engine copies stdout and stderr separately: their order in the
	// log is only certain some time apart.
	c := f.start(t, f.spec(t, "err=problem", "sleep=300ms", "lines=5", "sleep=1h"))

	logs := func(opts apps.LogOptions) (string, string) {
		t.Helper()
		var out, errOut writeLog
		if err := f.e.Logs(ctx, c.ID, opts, apps.Streams{Stdout: &out, Stderr: &errOut}); err != nil {
			t.Fatalf("Logs(%+v): %v", opts, err)
		}
		return out.String(), errOut.String()
	}
	var out, errOut string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if out, errOut = logs(apps.LogOptions{}); strings.Contains(out, "line 5") || time.Now().After(deadline) {
			break
		}
	}
	if out != "line 1\nline 2\nline 3\nline 4\nline 5\n" || errOut != "problem\n" {
		t.Errorf("Logs: stdout %q, stderr %q", out, errOut)
	}
	if out, errOut := logs(apps.LogOptions{Tail: 2}); out != "line 4\nline 5\n" || errOut != "" {
		t.Errorf("Logs tail 2: stdout %q, stderr %q", out, errOut)
	}
	out, errOut = logs(apps.LogOptions{Timestamps: true})
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 5 || !strings.HasSuffix(errOut, " problem\n") {
		t.Errorf("Logs with timestamps: stdout %q, stderr %q", out, errOut)
	}
	for i, l := range lines {
		ts, text, _ := strings.Cut(l, " ")
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || text != fmt.Sprintf("line %d", i+1) {
			t.Errorf("timestamped line %q: %v", l, err)
		}
	}

	// Follow streams until the container stops.
	var followed writeLog
	done := make(chan error, 1)
	go func() {
		done <- f.e.Logs(ctx, c.ID, apps.LogOptions{Follow: true, Tail: 1}, apps.Streams{Stdout: &followed})
	}()
	select {
	case err := <-done:
		t.Fatalf("Logs with Follow returned while the container runs: %v", err)
	case <-time.After(time.Second):
	}
	if err := f.e.Stop(ctx, c.ID, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil || followed.String() != "line 5\n" {
			t.Errorf("Logs with Follow: %v, output %q", err, followed.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Logs with Follow did not return when the container stopped")
	}
	if code, err := f.e.Wait(ctx, c.ID); err != nil || code != 0 {
		t.Errorf("Wait on a stopped container = %d, %v; want 0", code, err)
	}
	// Follow of a stopped container returns at once.
	if out, _ := logs(apps.LogOptions{Follow: true}); !strings.HasSuffix(out, "line 5\n") {
		t.Errorf("Logs with Follow of a stopped container: %q", out)
	}

	t.Run("Wait", func(t *testing.T) {
		c := f.start(t, f.spec(t, "sleep=1500ms", "exit=7"))
		begin := time.Now()
		code, err := f.e.Wait(ctx, c.ID)
		if err != nil || code != 7 {
			t.Errorf("Wait = %d, %v; want 7", code, err)
		}
		if d := time.Since(begin); d < 500*time.Millisecond {
			t.Errorf("Wait returned after %s, before the container exited", d)
		}
		if code, err := f.e.Wait(ctx, c.Name); err != nil || code != 7 {
			t.Errorf("second Wait = %d, %v; want 7", code, err)
		}

		running := f.start(t, f.spec(t, "sleep=1h"))
		tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if _, err := f.e.Wait(tctx, running.ID); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Wait past the deadline: %v", err)
		}
		tctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if err := f.e.Logs(tctx, running.ID, apps.LogOptions{Follow: true}, apps.Streams{}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Logs with Follow past the deadline: %v", err)
		}
		if _, err := f.e.Wait(ctx, "rivetr-test-missing-"+f.run); !errors.Is(err, ErrNotFound) {
			t.Errorf("Wait on a missing container: %v, want ErrNotFound", err)
		}
	})

	t.Run("terminal", func(t *testing.T) {
		spec := f.spec(t, "tty", "err=also-here", "sleep=1h")
		spec.TTY = true
		c := f.start(t, spec)
		var out, errOut writeLog
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "also-here") && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			out, errOut = writeLog{}, writeLog{}
			if err := f.e.Logs(ctx, c.ID, apps.LogOptions{}, apps.Streams{Stdout: &out, Stderr: &errOut}); err != nil {
				t.Fatal(err)
			}
		}
		if !strings.HasPrefix(out.String(), "tty\r\n") || !strings.Contains(out.String(), "also-here") || errOut.String() != "" {
			t.Errorf("Logs of a terminal: stdout %q, stderr %q", out.String(), errOut.String())
		}
	})

	if err := f.e.Logs(ctx, "rivetr-test-missing-"+f.run, apps.LogOptions{}, apps.Streams{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Logs of a missing container: %v, want ErrNotFound", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := f.e.Logs(cctx, c.ID, apps.LogOptions{}, apps.Streams{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Logs with a cancelled context: %v", err)
	}
}

func TestExec(t *testing.T) {
	f := newToolFixture(t)
	ctx := context.Background()
	spec := f.spec(t, "sleep=1h")
	spec.Env = map[string]string{"GREETING": "from the container"}
	c := f.start(t, spec)

	execTool := func(tty bool, stdin *strings.Reader, steps ...string) (int, string, string) {
		t.Helper()
		var out, errOut writeLog
		st := apps.Streams{Stdout: &out, Stderr: &errOut}
		if stdin != nil {
			st.Stdin = stdin
		}
		code, err := f.e.Exec(ctx, c.ID, append([]string{"/tool"}, steps...), tty, st)
		if err != nil {
			t.Fatalf("Exec %v: %v", steps, err)
		}
		return code, out.String(), errOut.String()
	}
	if code, out, errOut := execTool(false, nil, "out=hi", "env=GREETING", "err=oops", "exit=4"); code != 4 || out != "hi\nfrom the container\n" || errOut != "oops\n" {
		t.Errorf("Exec: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, out, _ := execTool(false, strings.NewReader("some input\nmore\n"), "echo", "out=done"); code != 0 || out != "some input\nmore\ndone\n" {
		t.Errorf("Exec with stdin: code %d, stdout %q", code, out)
	}
	if code, out, _ := execTool(false, nil, "tty"); code != 0 || out != "notty\n" {
		t.Errorf("Exec without tty: code %d, stdout %q", code, out)
	}
	if code, out, errOut := execTool(true, nil, "tty", "err=e"); code != 0 || out != "tty\r\ne\r\n" || errOut != "" {
		t.Errorf("Exec with tty: code %d, stdout %q, stderr %q", code, out, errOut)
	}

	var out writeLog
	code, err := f.e.Exec(ctx, c.ID, []string{"/no/such/binary"}, false, apps.Streams{Stdout: &out, Stderr: &out})
	if err == nil && code == 0 {
		t.Errorf("Exec of a missing binary succeeded")
	}
	t.Logf("Exec of a missing binary: %d, %v, %q", code, err, out.String())

	if _, err := f.e.Exec(ctx, "rivetr-test-missing-"+f.run, []string{"/tool"}, false, apps.Streams{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Exec in a missing container: %v, want ErrNotFound", err)
	}
	if _, err := f.e.Exec(ctx, c.ID, nil, false, apps.Streams{}); err == nil {
		t.Error("Exec of no command succeeded")
	}
	if err := f.e.Stop(ctx, c.ID, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.Exec(ctx, c.ID, []string{"/tool"}, false, apps.Streams{}); err == nil {
		t.Error("Exec in a stopped container succeeded")
	} else {
		t.Logf("Exec in a stopped container: %v", err)
	}
}

func TestMounts(t *testing.T) {
	f := newToolFixture(t)
	ctx := context.Background()

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("from the host"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := f.spec(t, "cat=/data/hello.txt", "write=/data/out.txt:from the container")
	spec.Mounts = []apps.Mount{{Source: dir, Target: "/data"}}
	if code, out, errOut := f.attached(t, spec, nil); code != 0 || out != "from the host" {
		t.Errorf("bind mount: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "out.txt")); err != nil || string(b) != "from the container" {
		t.Errorf("file written through the bind mount: %q, %v", b, err)
	}
	spec = f.spec(t, "cat=/data/hello.txt", "write=/data/no.txt:x")
	spec.Mounts = []apps.Mount{{Source: dir, Target: "/data", ReadOnly: true}}
	if code, out, errOut := f.attached(t, spec, nil); code != 1 || out != "from the host" || !strings.Contains(errOut, "read-only") {
		t.Errorf("read-only bind mount: code %d, stdout %q, stderr %q", code, out, errOut)
	}

	vol := "rivetr-test-vol-" + f.run
	t.Cleanup(func() {
		if _, err := f.e.cli.VolumeRemove(context.Background(), vol, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("cleanup: remove volume %s: %v", vol, err)
		}
	})
	spec = f.spec(t, "write=/vol/f:persisted")
	spec.Mounts = []apps.Mount{{Source: vol, Target: "/vol", Volume: true}}
	if code, _, errOut := f.attached(t, spec, nil); code != 0 {
		t.Fatalf("write to the volume: code %d, stderr %q", code, errOut)
	}
	spec = f.spec(t, "cat=/vol/f", "write=/vol/g:x")
	spec.Mounts = []apps.Mount{{Source: vol, Target: "/vol/", Volume: true, ReadOnly: true}}
	if code, out, errOut := f.attached(t, spec, nil); code != 1 || out != "persisted" || !strings.Contains(errOut, "read-only") {
		t.Errorf("second container on the volume: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	v, err := f.e.cli.VolumeInspect(ctx, vol, client.VolumeInspectOptions{})
	if err != nil {
		t.Fatalf("volume %s: %v", vol, err)
	}
	if v.Volume.Labels[apps.LabelManaged] != "true" || v.Volume.Labels[apps.LabelApp] != "tool-"+f.run {
		t.Errorf("volume labels %v, want rivetr.managed and rivetr.app", v.Volume.Labels)
	}

	// A volume made by someone else is used as it is.
	own := vol + "-own"
	t.Cleanup(func() { f.e.cli.VolumeRemove(context.Background(), own, client.VolumeRemoveOptions{Force: true}) })
	if _, err := f.e.cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: own, Labels: map[string]string{"owner": "operator"}}); err != nil {
		t.Fatal(err)
	}
	spec = f.spec(t, "write=/own/f:x", "cat=/own/f")
	spec.Mounts = []apps.Mount{{Source: own, Target: "/own", Volume: true}}
	if code, out, errOut := f.attached(t, spec, nil); code != 0 || out != "x" {
		t.Errorf("operator's volume: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if v, err := f.e.cli.VolumeInspect(ctx, own, client.VolumeInspectOptions{}); err != nil || len(v.Volume.Labels) != 1 || v.Volume.Labels["owner"] != "operator" {
		t.Errorf("operator's volume after use: labels %v, %v", v.Volume.Labels, err)
	}

	// The mounts as the engine reports them.
	spec = f.spec(t, "sleep=1h")
	spec.Mounts = []apps.Mount{{Source: dir, Target: "/data", ReadOnly: true}, {Source: vol, Target: "/vol", Volume: true}}
	c := f.start(t, spec)
	raw, err := f.e.cli.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range raw.Container.Mounts {
		got = append(got, fmt.Sprintf("%s %s->%s rw=%v", m.Type, m.Source, m.Destination, m.RW))
		switch m.Destination {
		case "/data":
			if m.Type != "bind" || m.Source != dir || m.RW {
				t.Errorf("bind mount reported as %+v", m)
			}
		case "/vol":
			if m.Type != "volume" || m.Name != vol || !m.RW {
				t.Errorf("volume reported as %+v", m)
			}
		}
	}
	if len(got) != 2 {
		t.Errorf("mounts %v, want 2", got)
	}
}

func TestInvalidSpecs(t *testing.T) {
	e := &Engine{kind: Docker, network: "n"}
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o644)
	base := apps.ContainerSpec{Name: "x", Image: "img"}
	for _, tc := range []struct {
		name string
		edit func(*apps.ContainerSpec)
		want string
	}{
		{"relative bind source", func(s *apps.ContainerSpec) { s.Mounts = []apps.Mount{{Source: "data", Target: "/data"}} }, "absolute host path"},
		{"missing bind source", func(s *apps.ContainerSpec) { s.Mounts = []apps.Mount{{Source: dir + "/none", Target: "/data"}} }, "does not exist"},
		{"relative target", func(s *apps.ContainerSpec) { s.Mounts = []apps.Mount{{Source: dir, Target: "data"}} }, "absolute path inside the container"},
		{"root target", func(s *apps.ContainerSpec) { s.Mounts = []apps.Mount{{Source: dir, Target: "/"}} }, "other than /"},
		{"volume without name", func(s *apps.ContainerSpec) { s.Mounts = []apps.Mount{{Target: "/v", Volume: true}} }, "invalid name"},
		{"volume with a path", func(s *apps.ContainerSpec) { s.Mounts = []apps.Mount{{Source: "/srv/v", Target: "/v", Volume: true}} }, "invalid name"},
		{"two mounts on one target", func(s *apps.ContainerSpec) {
			s.Mounts = []apps.Mount{{Source: dir, Target: "/data"}, {Source: "vol", Target: "/data/", Volume: true}}
		}, "two mounts on /data"},
		{"negative memory", func(s *apps.ContainerSpec) { s.Resources.MemoryLimit = -1 }, "negative memory limit"},
		{"reservation above limit", func(s *apps.ContainerSpec) {
			s.Resources = apps.Resources{MemoryLimit: 1 << 20, MemoryReservation: 2 << 20}
		}, "above the limit"},
		{"negative stop timeout", func(s *apps.ContainerSpec) { s.StopTimeout = -time.Second }, "stop timeout"},
		{"no image", func(s *apps.ContainerSpec) { s.Image = "" }, "required"},
	} {
		spec := base
		tc.edit(&spec)
		err := e.checkSpec(spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "docker: run container ") {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	ok := base
	ok.Mounts = []apps.Mount{{Source: file, Target: "/etc/f", ReadOnly: true}, {Source: "my-vol_1.x", Target: "/v", Volume: true}}
	ok.Resources = apps.Resources{MemoryLimit: 1 << 30, MemoryReservation: 1 << 29, NanoCPUs: 1_500_000_000, CPUShares: 512}
	if err := e.checkSpec(ok); err != nil {
		t.Errorf("valid spec refused: %v", err)
	}
}

func TestContainerConfig(t *testing.T) {
	e := &Engine{kind: Docker, network: "n", ulimits: []Ulimit{{"nofile", 1, 2}}}
	spec := apps.ContainerSpec{
		Name:        "x",
		Image:       "img",
		Cmd:         []string{"a"},
		Labels:      map[string]string{apps.LabelApp: "app"},
		Stdin:       true,
		TTY:         true,
		Mounts:      []apps.Mount{{Source: "/srv/data/", Target: "/data/", ReadOnly: true}, {Source: "vol", Target: "/v", Volume: true}},
		Resources:   apps.Resources{MemoryLimit: 256 << 20, MemoryReservation: 128 << 20, NanoCPUs: 1_500_000_000, CPUShares: 512},
		StopTimeout: 1500 * time.Millisecond,
	}
	cfg, hc, _ := e.containerConfig(spec, parseOK(t, "no"), false)
	if !cfg.Tty || !cfg.OpenStdin || cfg.AttachStdin || cfg.StdinOnce {
		t.Errorf("Tty %v OpenStdin %v AttachStdin %v StdinOnce %v; want a terminal and stdin kept open, no attach", cfg.Tty, cfg.OpenStdin, cfg.AttachStdin, cfg.StdinOnce)
	}
	if cfg.StopTimeout == nil || *cfg.StopTimeout != 2 {
		t.Errorf("StopTimeout %v, want 2 (rounded up)", cfg.StopTimeout)
	}
	r := hc.Resources
	if r.Memory != 256<<20 || r.MemoryReservation != 128<<20 || r.NanoCPUs != 1_500_000_000 || r.CPUShares != 512 {
		t.Errorf("resources %+v", r)
	}
	if len(hc.Mounts) != 2 {
		t.Fatalf("mounts %+v", hc.Mounts)
	}
	if m := hc.Mounts[0]; m.Type != "bind" || m.Source != "/srv/data" || m.Target != "/data" || !m.ReadOnly || m.VolumeOptions != nil {
		t.Errorf("bind mount %+v", m)
	}
	if m := hc.Mounts[1]; m.Type != "volume" || m.Source != "vol" || m.Target != "/v" || m.ReadOnly {
		t.Errorf("volume mount %+v", m)
	}
	cfg, hc, _ = e.containerConfig(apps.ContainerSpec{Name: "x", Image: "img"}, parseOK(t, "no"), false)
	if cfg.StopTimeout != nil || cfg.Tty || cfg.OpenStdin || len(hc.Mounts) != 0 || hc.Resources.Memory != 0 {
		t.Errorf("zero spec: StopTimeout %v Tty %v OpenStdin %v mounts %v resources %+v", cfg.StopTimeout, cfg.Tty, cfg.OpenStdin, hc.Mounts, hc.Resources)
	}
}

func parseOK(t *testing.T, policy string) container.RestartPolicy {
	t.Helper()
	p, err := parseRestartPolicy(policy)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResourcesAndStopTimeout(t *testing.T) {
	f := newToolFixture(t)
	ctx := context.Background()
	spec := f.spec(t, "sleep=1h")
	spec.Resources = apps.Resources{MemoryLimit: 64 << 20, MemoryReservation: 32 << 20, NanoCPUs: 500_000_000, CPUShares: 512}
	spec.StopTimeout = 7 * time.Second
	spec.Stdin = true
	c := f.start(t, spec)
	raw, err := f.e.cli.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := raw.Container
	if res := r.HostConfig.Resources; res.Memory != 64<<20 || res.MemoryReservation != 32<<20 || res.NanoCPUs != 500_000_000 || res.CPUShares != 512 {
		t.Errorf("resources reported as memory %d, reservation %d, NanoCPUs %d, CPU shares %d", res.Memory, res.MemoryReservation, res.NanoCPUs, res.CPUShares)
	}
	if r.Config.StopTimeout == nil || *r.Config.StopTimeout != 7 {
		t.Errorf("stop timeout reported as %v, want 7", r.Config.StopTimeout)
	}
	if !r.Config.OpenStdin || r.Config.Tty {
		t.Errorf("OpenStdin %v, Tty %v; want stdin open, no terminal", r.Config.OpenStdin, r.Config.Tty)
	}
}
