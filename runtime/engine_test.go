package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/rs/zerolog"

	"github.com/rivetr/rivetr/apps"
)

// These tests run against the real engine named by RIVETR_TEST_RUNTIME
// (docker by default, or podman). Without an answering engine they skip,
// unless CI=true, where they fail. Everything they create carries a name
// or label unique to the run and is removed in t.Cleanup; each test uses
// its own network rather than the shared apps.Network.

var helloBin struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range []string{helloBin.dir, toolBin.dir} {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
	os.Exit(code)
}

// testEngine connects to the engine under test, on a network of its own.
func testEngine(t *testing.T, opts Options) *Engine {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a container engine; skipped with -short")
	}
	kind := os.Getenv("RIVETR_TEST_RUNTIME")
	if kind == "" {
		kind = Docker
	}
	opts.Runtime = kind
	opts.Log = zerolog.New(zerolog.NewTestWriter(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := Detect(ctx, opts)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and no %s engine answered: %v", kind, err)
		}
		t.Skipf("no %s engine answered (set CI=true to fail instead): %v", kind, err)
	}
	e.network = "rivetr-test-" + uniq(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := e.cli.NetworkList(ctx, client.NetworkListOptions{Filters: make(client.Filters).Add("name", e.network)})
		if err == nil {
			for _, n := range res.Items {
				if n.Name == e.network {
					if _, err := e.cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
						t.Errorf("cleanup: remove network %s: %v", n.Name, err)
					}
				}
			}
		}
		e.Close()
	})
	return e
}

func uniq(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// helloBinary compiles, once per run, a static HTTP server that answers
// "hello" on $PORT and exits on SIGTERM.
func helloBinary(t *testing.T) string {
	t.Helper()
	h := &helloBin
	h.once.Do(func() {
		h.dir, h.err = os.MkdirTemp("", "rivetr-engine-test-")
		if h.err != nil {
			return
		}
		src := filepath.Join(h.dir, "src")
		os.MkdirAll(src, 0o755)
		os.WriteFile(filepath.Join(src, "go.mod"), []byte("module hello\n\ngo 1.21\n"), 0o644)
		os.WriteFile(filepath.Join(src, "main.go"), []byte(`package main

import (
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) })
	go func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
		<-c
		os.Exit(0)
	}()
	if err := http.ListenAndServe(":"+os.Getenv("PORT"), nil); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
}
`), 0o644)
		h.path = filepath.Join(h.dir, "hello")
		cmd := exec.Command("go", "build", "-trimpath", "-o", h.path, ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			h.err = fmt.Errorf("go build hello: %v\n%s", err, out)
		}
	})
	if h.err != nil {
		t.Fatal(h.err)
	}
	return h.path
}

// helloContext is a build directory for a FROM scratch image of the hello
// server, plus extra files.
func helloContext(t *testing.T, dockerfile string, extra map[string]string) string {
	t.Helper()
	bin, err := os.ReadFile(helloBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string]string{"Dockerfile": dockerfile, "hello": string(bin)}
	for k, v := range extra {
		files[k] = v
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const helloDockerfile = "FROM scratch\nCOPY hello /hello\nEXPOSE 5000\nCMD [\"/hello\"]\n"

// writeLog records what BuildImage writes and how many writes it took.
type writeLog struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (w *writeLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return w.buf.Write(p)
}

func (w *writeLog) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// buildHello builds the hello image tagged and labelled for this test and
// removes it at cleanup.
func buildHello(t *testing.T, e *Engine, run string) (tag string, labels map[string]string) {
	t.Helper()
	ctx := context.Background()
	tag = "rivetr-test/hello-" + run + ":1"
	labels = map[string]string{"rivetr.test": run, apps.LabelApp: "hello-" + run}
	t.Cleanup(func() {
		if err := e.RemoveImage(context.Background(), tag); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	out := &writeLog{}
	err := e.BuildImage(ctx, apps.ImageBuild{
		Dir:        helloContext(t, helloDockerfile, map[string]string{".dockerignore": "secret.txt\n", "secret.txt": "x"}),
		Dockerfile: "Dockerfile",
		Tag:        tag,
		Labels:     labels,
		BuildArgs:  map[string]string{"UNUSED": "1"},
		Out:        out,
	})
	if err != nil {
		t.Fatalf("BuildImage: %v\noutput:\n%s", err, out)
	}
	log := out.String()
	t.Logf("build output:\n%s", log)
	if !strings.Contains(strings.ToLower(log), "from scratch") || !strings.Contains(log, "COPY hello /hello") {
		t.Errorf("build output does not show the steps:\n%s", log)
	}
	if out.writes < 3 {
		t.Errorf("build output came in %d writes; want it streamed line by line", out.writes)
	}
	return tag, labels
}

func TestDetect(t *testing.T) {
	e := testEngine(t, Options{})
	want := os.Getenv("RIVETR_TEST_RUNTIME")
	if want == "" {
		want = Docker
	}
	if e.Name() != want {
		t.Errorf("Name() = %q, want %q", e.Name(), want)
	}
	if e.Host() == "" || e.version == "" {
		t.Errorf("Host() = %q, version %q: want both set", e.Host(), e.version)
	}
	if len(e.ulimits) == 0 {
		t.Errorf("no default ulimits")
	}
	t.Logf("engine %s %s at %s, rootless=%v, loopback=%v", e.Name(), e.version, e.Host(), e.rootless, e.loopback.Load())

	auto, err := Detect(context.Background(), Options{Runtime: Auto})
	if err != nil {
		t.Fatalf("auto-detection found nothing although %s answers: %v", want, err)
	}
	defer auto.Close()
	if auto.Name() != Docker && auto.Name() != Podman {
		t.Errorf("auto-detected %q", auto.Name())
	}
}

func TestCandidates(t *testing.T) {
	t.Setenv("DOCKER_HOST", "tcp://10.0.0.1:2375")
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	var got []string
	for _, c := range candidates() {
		got = append(got, c.host)
	}
	want := []string{"tcp://10.0.0.1:2375", "unix:///var/run/docker.sock", "unix:///run/podman/podman.sock", "unix:///run/user/1000/podman/podman.sock"}
	if !slices.Equal(got, want) {
		t.Errorf("candidates = %v, want %v", got, want)
	}
	t.Setenv("DOCKER_HOST", "")
	t.Setenv("XDG_RUNTIME_DIR", "")
	if n := len(candidates()); n != 2 {
		t.Errorf("%d candidates without DOCKER_HOST and XDG_RUNTIME_DIR, want 2", n)
	}
}

func TestEnsureNetwork(t *testing.T) {
	e := testEngine(t, Options{})
	ctx := context.Background()
	for i := range 2 {
		if err := e.EnsureNetwork(ctx); err != nil {
			t.Fatalf("EnsureNetwork #%d: %v", i+1, err)
		}
	}
	first := e.netIDs[e.network]

	// Several engines (as several processes would) race to create one
	// network: one must remain, and all must agree on it.
	const n = 4
	others := make([]*Engine, n)
	for i := range others {
		others[i] = testEngine(t, Options{})
		others[i].network = e.network + "-race"
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, o := range others {
		wg.Go(func() { errs[i] = o.EnsureNetwork(ctx) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent EnsureNetwork #%d: %v", i, err)
		}
		if others[i].netIDs[others[i].network] != others[0].netIDs[others[0].network] {
			t.Errorf("engines disagree on the network: %s vs %s", others[i].netIDs[others[i].network], others[0].netIDs[others[0].network])
		}
	}

	for _, tc := range []struct {
		e    *Engine
		want string
	}{{e, first}, {others[0], others[0].netIDs[others[0].network]}} {
		res, err := tc.e.cli.NetworkList(ctx, client.NetworkListOptions{Filters: make(client.Filters).Add("name", tc.e.network)})
		if err != nil {
			t.Fatal(err)
		}
		var found []string
		for _, nw := range res.Items {
			if nw.Name == tc.e.network {
				found = append(found, nw.ID)
				if nw.Labels[apps.LabelManaged] != "true" || nw.Driver != "bridge" {
					t.Errorf("network %s: driver %q labels %v", nw.Name, nw.Driver, nw.Labels)
				}
			}
		}
		if len(found) != 1 || found[0] != tc.want {
			t.Errorf("networks named %s: %v, want exactly [%s]", tc.e.network, found, tc.want)
		}
	}
}

func TestBuildImageErrors(t *testing.T) {
	e := testEngine(t, Options{})
	for _, tc := range []struct {
		name, dockerfile string
		extra            map[string]string
		want             string
	}{
		{"unknown instruction", "FROM scratch\nNOSUCHINSTRUCTION foo\n", nil, "nosuchinstruction"},
		{"missing file", "FROM scratch\nCOPY missing.txt /\n", nil, "missing.txt"},
		{"file excluded by .dockerignore", "FROM scratch\nCOPY secret.txt /\n",
			map[string]string{".dockerignore": "secret.txt\n", "secret.txt": "x"}, "secret.txt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tag := "rivetr-test/broken-" + uniq(t) + ":1"
			t.Cleanup(func() { e.RemoveImage(context.Background(), tag) })
			out := &writeLog{}
			err := e.BuildImage(context.Background(), apps.ImageBuild{
				Dir: helloContext(t, tc.dockerfile, tc.extra), Tag: tag, Out: out,
			})
			if err == nil {
				t.Fatalf("BuildImage succeeded; output:\n%s", out)
			}
			if !strings.Contains(strings.ToLower(err.Error()), tc.want) || !strings.HasPrefix(err.Error(), e.Name()+": build image "+tag) {
				t.Errorf("error = %q; want it to name %s and carry the engine's message (%q)", err, tag, tc.want)
			}
			t.Logf("error: %v", err)
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		tag := "rivetr-test/cancelled-" + uniq(t) + ":1"
		t.Cleanup(func() { e.RemoveImage(context.Background(), tag) })
		err := e.BuildImage(ctx, apps.ImageBuild{Dir: helloContext(t, helloDockerfile, nil), Tag: tag})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error = %v, want context.Canceled", err)
		}
	})
	t.Run("Dockerfile outside the context", func(t *testing.T) {
		err := e.BuildImage(context.Background(), apps.ImageBuild{Dir: t.TempDir(), Dockerfile: "../Dockerfile", Tag: "rivetr-test/x:1"})
		if err == nil || !strings.Contains(err.Error(), "not inside") {
			t.Errorf("error = %v", err)
		}
	})
}

// TestRunServe builds the hello image and runs it the way rivetr runs a web
// process, once relying on the network address and once publishing on
// loopback (the rootless path, forced).
func TestRunServe(t *testing.T) {
	for _, mode := range []string{"network", "loopback", "fallback"} {
		t.Run(mode, func(t *testing.T) {
			e := testEngine(t, Options{PublishLoopback: mode == "loopback"})
			if mode == "network" && e.loopback.Load() {
				t.Skipf("%s engine is rootless: its network is not reachable from the host", e.Name())
			}
			if mode == "fallback" {
				// An engine that claims to be rootful but whose network the
				// host cannot reach: Run must notice and publish on loopback.
				e.reaches = func(netip.Addr) bool { return false }
			}
			testRunServe(t, e)
			if mode == "fallback" && !e.loopback.Load() {
				t.Error("unreachable network did not switch the engine to loopback ports")
			}
		})
	}
}

func testRunServe(t *testing.T, e *Engine) {
	ctx := context.Background()
	run := uniq(t)
	tag, labels := buildHello(t, e, run)

	imgs, err := e.Images(ctx, map[string]string{"rivetr.test": run})
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || imgs[0] != tag {
		t.Errorf("Images by label = %v, want [%s]", imgs, tag)
	}
	if imgs, err := e.Images(ctx, map[string]string{"rivetr.test": run, apps.LabelManaged: "true"}); err != nil || len(imgs) != 1 {
		t.Errorf("Images with rivetr.managed=true = %v, %v; want the image", imgs, err)
	}

	name := "rivetr-test-web-" + run
	t.Cleanup(func() {
		if err := e.Remove(context.Background(), name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	c, err := e.Run(ctx, apps.ContainerSpec{
		Name:          name,
		Image:         tag,
		Env:           map[string]string{"PORT": "5000", "B": "2", "A": "1"},
		Labels:        labels,
		Port:          5000,
		RestartPolicy: "on-failure:3",
		Aliases:       []string{"web-" + run},
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if c.ID == "" || c.Name != name || !c.Running || c.State != "running" || c.Labels[apps.LabelManaged] != "true" || c.Labels["rivetr.test"] != run {
		t.Errorf("Run returned %+v", c)
	}
	if c.Addr == "" {
		t.Fatalf("Run returned no Addr: %+v", c)
	}
	if others, err := e.List(ctx, map[string]string{"rivetr.test": run}); err != nil || len(others) != 1 {
		t.Errorf("containers after Run: %+v, %v; want exactly one", others, err)
	}
	if e.loopback.Load() != strings.HasPrefix(c.Addr, "127.0.0.1:") {
		t.Errorf("Addr %s with loopback publishing %v", c.Addr, e.loopback.Load())
	}
	if body := getHello(t, c.Addr); body != "hello" {
		t.Errorf("GET http://%s/ = %q, want hello", c.Addr, body)
	}

	// The engine's own view: no port on a public interface, ulimits,
	// restart policy, sorted environment, network alias.
	raw, err := e.cli.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := raw.Container
	bindings := 0
	for port, bs := range r.HostConfig.PortBindings {
		for _, b := range bs {
			bindings++
			if b.HostIP.String() != "127.0.0.1" {
				t.Errorf("port %s bound on %v; only loopback is allowed", port, b.HostIP)
			}
		}
	}
	for port, bs := range r.NetworkSettings.Ports {
		for _, b := range bs {
			if b.HostIP.String() != "127.0.0.1" {
				t.Errorf("port %s published on %v; only loopback is allowed", port, b.HostIP)
			}
		}
	}
	if want := map[bool]int{false: 0, true: 1}[e.loopback.Load()]; bindings != want {
		t.Errorf("%d port bindings %v, want %d", bindings, r.HostConfig.PortBindings, want)
	}
	if r.HostConfig.PublishAllPorts {
		t.Error("PublishAllPorts is set")
	}
	var ulimits []string
	for _, u := range r.HostConfig.Ulimits {
		name := strings.ToLower(strings.TrimPrefix(u.Name, "RLIMIT_")) // Podman reports RLIMIT_NOFILE
		ulimits = append(ulimits, Ulimit{name, u.Soft, u.Hard}.String())
	}
	var want []string
	for _, u := range e.ulimits {
		want = append(want, u.String())
	}
	if strings.Join(ulimits, " ") != strings.Join(want, " ") {
		t.Errorf("ulimits = %v, want the defaults %v", ulimits, want)
	}
	if p := r.HostConfig.RestartPolicy; p.Name != "on-failure" || p.MaximumRetryCount != 3 {
		t.Errorf("restart policy = %+v", p)
	}
	for _, kv := range []string{"A=1", "B=2", "PORT=5000"} { // Podman reorders them
		if !slices.Contains(r.Config.Env, kv) {
			t.Errorf("env = %v, want %s in it", r.Config.Env, kv)
		}
	}
	if ep := r.NetworkSettings.Networks[e.network]; ep == nil || !strings.Contains(strings.Join(ep.Aliases, " ")+" "+strings.Join(ep.DNSNames, " "), "web-"+run) {
		t.Errorf("network %s endpoint %+v lacks alias web-%s", e.network, ep, run)
	}

	list, err := e.List(ctx, map[string]string{"rivetr.test": run})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != c.ID || list[0].Name != name || !list[0].Running || list[0].Addr != c.Addr {
		t.Errorf("List = %+v, want [%+v]", list, c)
	}
	if list, err := e.List(ctx, map[string]string{"rivetr.test": run, apps.LabelApp: "other"}); err != nil || len(list) != 0 {
		t.Errorf("List with a non-matching label = %v, %v", list, err)
	}
	got, err := e.Inspect(ctx, name)
	if err != nil || got.ID != c.ID || got.Addr != c.Addr || got.Image != tag {
		t.Errorf("Inspect = %+v, %v; want %+v", got, err, c)
	}

	if err := e.Stop(ctx, c.ID, 5*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if got, err := e.Inspect(ctx, c.ID); err != nil || got.Running || got.State != "exited" {
		t.Errorf("after Stop: %+v, %v", got, err)
	}
	if list, err := e.List(ctx, map[string]string{"rivetr.test": run}); err != nil || len(list) != 1 || list[0].Running {
		t.Errorf("List after Stop (stopped containers included) = %+v, %v", list, err)
	}
	if err := e.Stop(ctx, c.ID, time.Second); err != nil {
		t.Errorf("Stop of a stopped container: %v", err)
	}
	if err := e.Remove(ctx, c.ID); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := e.Inspect(ctx, c.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Inspect after Remove: %v, want ErrNotFound", err)
	}
	if err := e.Remove(ctx, c.ID); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	if err := e.Stop(ctx, c.ID, time.Second); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stop of a removed container: %v, want ErrNotFound", err)
	}

	if err := e.RemoveImage(ctx, tag); err != nil {
		t.Fatalf("RemoveImage: %v", err)
	}
	if imgs, err := e.Images(ctx, map[string]string{"rivetr.test": run}); err != nil || len(imgs) != 0 {
		t.Errorf("Images after RemoveImage = %v, %v", imgs, err)
	}
	if err := e.RemoveImage(ctx, tag); err != nil {
		t.Errorf("RemoveImage of a missing image: %v", err)
	}
}

// getHello GETs http://addr/, retrying for up to 10 s while the server
// starts.
func getHello(t *testing.T, addr string) string {
	t.Helper()
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := hc.Get("http://" + addr + "/")
		if err == nil {
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK {
				return string(body)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET http://%s/: %v", addr, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestRunStartFailureRemovesContainer(t *testing.T) {
	e := testEngine(t, Options{})
	ctx := context.Background()
	run := uniq(t)
	tag, labels := buildHello(t, e, run)
	name := "rivetr-test-broken-" + run
	t.Cleanup(func() { e.Remove(context.Background(), name) })
	_, err := e.Run(ctx, apps.ContainerSpec{Name: name, Image: tag, Cmd: []string{"/no/such/binary"}, Labels: labels, Port: 5000})
	if err == nil {
		t.Fatal("Run of a missing binary succeeded")
	}
	if !strings.HasPrefix(err.Error(), e.Name()+": start container "+name+": ") {
		t.Errorf("error = %q, want it to say which container failed to start", err)
	}
	if _, err := e.Inspect(ctx, name); !errors.Is(err, ErrNotFound) {
		t.Errorf("container left behind after a failed start: %v", err)
	}

	for _, policy := range []string{"sometimes", "always:3", "on-failure:x"} {
		if _, err := e.Run(ctx, apps.ContainerSpec{Name: name, Image: tag, RestartPolicy: policy}); err == nil || !strings.Contains(err.Error(), "restart policy") {
			t.Errorf("restart policy %q: %v", policy, err)
		}
	}
	if _, err := e.Run(ctx, apps.ContainerSpec{Name: name, Image: "rivetr-test/no-such-image-" + run + ":1"}); err == nil {
		t.Error("Run of a missing image succeeded")
	}
}

func TestDetectForcedEngineMissing(t *testing.T) {
	dir := t.TempDir()
	cands := []candidate{
		{host: "unix://" + filepath.Join(dir, "docker.sock")},
		{host: "unix://" + filepath.Join(dir, "podman.sock")},
	}
	for _, kind := range []string{Auto, Docker, Podman} {
		_, err := detect(context.Background(), Options{Runtime: kind}, cands)
		if err == nil {
			t.Fatalf("%s: detect found an engine in an empty directory", kind)
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") || !strings.Contains(msg, "docker.sock") || !strings.Contains(msg, "podman.sock") {
			t.Errorf("%s: error %q should be one line naming every socket tried", kind, msg)
		}
		if kind != Auto && !strings.Contains(msg, "no "+kind+" engine") {
			t.Errorf("%s: error %q should name the engine wanted", kind, msg)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: error %q does not wrap the candidates' errors", kind, msg)
		}
		t.Logf("%s: %v", kind, err)
	}

	// A forced kind skips an engine of the other kind.
	if _, err := os.Stat("/var/run/docker.sock"); err == nil && !testing.Short() {
		_, err := detect(context.Background(), Options{Runtime: Podman}, []candidate{{host: "unix:///var/run/docker.sock"}, cands[1]})
		if err != nil && strings.Contains(err.Error(), "(is docker)") {
			t.Logf("podman forced: %v", err)
		} else if err != nil && !strings.Contains(err.Error(), "Podman") {
			t.Logf("docker.sock did not answer as docker: %v", err)
		} else if err == nil {
			t.Errorf("forced podman accepted /var/run/docker.sock; is it Podman's socket?")
		}
	}
	if _, err := detect(context.Background(), Options{Runtime: "lxc"}, cands); err == nil || !strings.Contains(err.Error(), `"lxc"`) {
		t.Errorf("unknown runtime: %v", err)
	}
}
