package gitserver

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rivetr/rivetr/apps"
	"github.com/rivetr/rivetr/store"
)

// hookEnv is a Webhooks handler over a real SQLite state and a queue that
// is never started, so queued jobs stay visible.
type hookEnv struct {
	t   *testing.T
	db  *store.SQLite
	svc *apps.Service
	h   *Webhooks
}

func newHookEnv(t *testing.T) *hookEnv {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "rivetr.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc := apps.NewService(db)
	q := apps.NewQueue(db, nil, zerologPrintf{}, apps.QueueConfig{})
	return &hookEnv{t: t, db: db, svc: svc, h: &Webhooks{Apps: svc, Deliveries: db, Queue: q, Log: zerolog.Nop()}}
}

type zerologPrintf struct{}

func (zerologPrintf) Printf(string, ...any) {}

// follow creates app following url with secret (and branch, if set).
func (e *hookEnv) follow(app, url, secret, branch string) {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.svc.Create(ctx, app); err != nil {
		e.t.Fatal(err)
	}
	for k, v := range map[string]string{apps.GitSourceURL: url, apps.GitWebhookSecret: secret, apps.GitSourceBranch: branch} {
		if err := e.svc.SetSetting(ctx, app, "git", k, v); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *hookEnv) jobs() []apps.DeployJob {
	e.t.Helper()
	j, err := e.db.Jobs(context.Background(), "", 100)
	if err != nil {
		e.t.Fatal(err)
	}
	return j
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "webhooks", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hmacHex(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// send posts body to /webhooks/provider with headers and decodes the answer.
func (e *hookEnv) send(provider string, body []byte, hdr map[string]string) (int, hookResponse) {
	e.t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/webhooks/"+provider, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	var resp hookResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		e.t.Fatalf("answer %d is not JSON: %q", rec.Code, rec.Body.String())
	}
	return rec.Code, resp
}

func github(secret, event, delivery string, body []byte) map[string]string {
	h := map[string]string{"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "User-Agent": "GitHub-Hookshot/abc"}
	if secret != "" {
		h["X-Hub-Signature-256"] = "sha256=" + hmacHex(secret, body)
	}
	return h
}

const secretA = "0123456789abcdef-secret-a"

func TestGitHubPushQueuesOnceAndRefusesTheRest(t *testing.T) {
	e := newHookEnv(t)
	e.follow("web", "git@github.com:octo/hello.git", secretA, "")
	body := fixture(t, "github-push.json")

	code, resp := e.send(GitHub, body, github(secretA, "push", "d-1", body))
	if code != http.StatusAccepted || resp.Status != "queued" || len(resp.Queued) != 1 || resp.Queued[0].App != "web" {
		t.Fatalf("signed push: %d %+v", code, resp)
	}
	jobs := e.jobs()
	if len(jobs) != 1 {
		t.Fatalf("%d jobs", len(jobs))
	}
	j := jobs[0]
	if j.App != "web" || j.Trigger != GitHub || j.Ref != "main" || j.Rev != "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c" ||
		j.Delivery != "d-1" || j.User != "octocat" || j.Status != apps.JobQueued {
		t.Errorf("job %+v", j)
	}
	last, _ := e.svc.Setting(context.Background(), "web", apps.GitSyncNS, "last-webhook", "")
	if !strings.Contains(last, "github main 0d1a26e delivery d-1: queued deploy #") {
		t.Errorf("last webhook %q", last)
	}

	// The same delivery again: processed once.
	if code, resp := e.send(GitHub, body, github(secretA, "push", "d-1", body)); code != http.StatusOK || resp.Status != "duplicate" {
		t.Errorf("replayed delivery: %d %+v", code, resp)
	}
	// Wrongly signed, unsigned, signed over another body: 401.
	for name, hdr := range map[string]map[string]string{
		"wrong secret": github("another-secret-0123456789", "push", "d-2", body),
		"unsigned":     github("", "push", "d-3", body),
		"other body":   github(secretA, "push", "d-4", []byte(`{}`)),
		"sha1 only":    {"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-5", "X-Hub-Signature": "sha1=" + hmacHex(secretA, body)[:40]},
		"not hex":      {"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-6", "X-Hub-Signature-256": "sha256=zz"},
	} {
		if code, _ := e.send(GitHub, body, hdr); code != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, code)
		}
	}
	// A different delivery of a push to another branch: ignored.
	other := bytes.Replace(body, []byte(`"ref": "refs/heads/main"`), []byte(`"ref": "refs/heads/feature"`), 1)
	if code, resp := e.send(GitHub, other, github(secretA, "push", "d-7", other)); code != http.StatusOK || resp.Status != "ignored" || len(resp.Ignored) != 1 {
		t.Errorf("push to another branch: %d %+v", code, resp)
	}
	// Tag pushes and deleted branches deploy nothing either.
	tag := bytes.Replace(body, []byte(`"ref": "refs/heads/main"`), []byte(`"ref": "refs/tags/v1"`), 1)
	if code, resp := e.send(GitHub, tag, github(secretA, "push", "d-8", tag)); code != http.StatusOK || resp.Status != "ignored" {
		t.Errorf("tag push: %d %+v", code, resp)
	}
	deleted := bytes.Replace(body, []byte(`"deleted": false`), []byte(`"deleted": true`), 1)
	if code, resp := e.send(GitHub, deleted, github(secretA, "push", "d-9", deleted)); code != http.StatusOK || resp.Status != "ignored" {
		t.Errorf("deleted branch: %d %+v", code, resp)
	}
	// Ping: 200, nothing queued.
	ping := fixture(t, "github-ping.json")
	if code, resp := e.send(GitHub, ping, github(secretA, "ping", "d-10", ping)); code != http.StatusOK || resp.Status != "pong" {
		t.Errorf("ping: %d %+v", code, resp)
	}
	// Other events are acknowledged and ignored.
	if code, resp := e.send(GitHub, ping, github(secretA, "issues", "d-11", ping)); code != http.StatusOK || resp.Status != "ignored" {
		t.Errorf("issues event: %d %+v", code, resp)
	}
	if n := len(e.jobs()); n != 1 {
		t.Errorf("%d jobs after the refused and ignored requests, want 1", n)
	}
}

func TestWebhookLimitsAndRoutes(t *testing.T) {
	e := newHookEnv(t)
	e.follow("web", "https://github.com/octo/hello", secretA, "")
	e.h.MaxBody = 1024
	big := bytes.Repeat([]byte(" "), 2048)
	if code, _ := e.send(GitHub, big, github(secretA, "push", "d-1", big)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("big body: %d, want 413", code)
	}
	if code, _ := e.send("bitbucket", []byte(`{}`), nil); code != http.StatusNotFound {
		t.Errorf("unknown provider: %d", code)
	}
	req := httptest.NewRequest(http.MethodGet, "/webhooks/github", nil)
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", rec.Code)
	}
	// Garbage signed with no known secret: 401, not 400.
	if code, _ := e.send(GitHub, []byte("not json"), github(secretA, "push", "d-2", []byte("not json"))); code != http.StatusUnauthorized {
		t.Errorf("garbage signed by an app secret but naming no repository: %d, want 401", code)
	}
	// Signed by the global secret: authenticated, so 400 for garbage.
	e.svc.SetSetting(context.Background(), apps.Global, "git", apps.GitWebhookSecret, "global-secret-0123456789")
	if code, _ := e.send(GitHub, []byte("not json"), github("global-secret-0123456789", "push", "d-3", []byte("not json"))); code != http.StatusBadRequest {
		t.Errorf("garbage signed by the global secret: %d, want 400", code)
	}
}

func TestSeveralAppsFollowOneRepository(t *testing.T) {
	e := newHookEnv(t)
	const secretB = "fedcba9876543210-secret-b"
	e.follow("web", "https://github.com/Octo/Hello.git", secretA, "")
	e.follow("staging", "git@github.com:octo/hello.git", secretB, "main")
	e.follow("uses-global", "ssh://git@github.com/octo/hello", "", "")
	e.follow("unrelated", "https://github.com/octo/other.git", secretA, "")
	e.follow("prod", "https://github.com/octo/hello.git", secretA, "production")
	body := fixture(t, "github-push.json")

	code, resp := e.send(GitHub, body, github(secretA, "push", "d-1", body))
	if code != http.StatusAccepted || len(resp.Queued) != 1 || resp.Queued[0].App != "web" {
		t.Fatalf("signed with web's secret: %d %+v", code, resp)
	}
	if len(resp.Ignored) != 1 || resp.Ignored[0].App != "prod" {
		t.Errorf("prod deploys another branch: ignored %+v", resp.Ignored)
	}
	code, resp = e.send(GitHub, body, github(secretB, "push", "d-2", body))
	if code != http.StatusAccepted || len(resp.Queued) != 1 || resp.Queued[0].App != "staging" {
		t.Fatalf("signed with staging's secret: %d %+v", code, resp)
	}
	// An app without its own secret uses the global one.
	const global = "global-secret-0123456789"
	e.svc.SetSetting(context.Background(), apps.Global, "git", apps.GitWebhookSecret, global)
	code, resp = e.send(GitHub, body, github(global, "push", "d-3", body))
	if code != http.StatusAccepted || len(resp.Queued) != 1 || resp.Queued[0].App != "uses-global" {
		t.Fatalf("signed with the global secret: %d %+v", code, resp)
	}
}

func TestGitLabAndGiteaPushes(t *testing.T) {
	e := newHookEnv(t)
	e.follow("lab", "https://gitlab.example.com/mike/diaspora.git", secretA, "")
	e.follow("tea", "https://gitea.example.com/gitea/webhooks.git", secretA, "")
	lab := fixture(t, "gitlab-push.json")
	labHdr := func(token, uuid string) map[string]string {
		return map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": token, "X-Gitlab-Event-UUID": uuid,
			"X-Gitlab-Instance": "https://gitlab.example.com", "User-Agent": "GitLab/17.0.0"}
	}
	code, resp := e.send(GitLab, lab, labHdr(secretA, "u-1"))
	if code != http.StatusAccepted || len(resp.Queued) != 1 || resp.Queued[0].App != "lab" {
		t.Fatalf("gitlab push: %d %+v", code, resp)
	}
	if code, _ := e.send(GitLab, lab, labHdr("wrong-token-0123456789", "u-2")); code != http.StatusUnauthorized {
		t.Errorf("gitlab wrong token: %d", code)
	}
	if code, _ := e.send(GitLab, lab, labHdr(secretA, "u-1")); code != http.StatusOK {
		t.Errorf("gitlab replay: %d", code)
	}
	// A GitLab token must not pass as a GitHub signature and vice versa.
	if code, _ := e.send(GitHub, lab, map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + secretA}); code != http.StatusUnauthorized {
		t.Errorf("token as signature: %d", code)
	}

	tea := fixture(t, "gitea-push.json")
	teaHdr := func(secret, id string) map[string]string {
		return map[string]string{"X-Gitea-Event": "push", "X-Gitea-Delivery": id, "X-Gitea-Signature": hmacHex(secret, tea),
			"X-GitHub-Event": "push"}
	}
	code, resp = e.send(Gitea, tea, teaHdr(secretA, "g-1"))
	if code != http.StatusAccepted || len(resp.Queued) != 1 || resp.Queued[0].App != "tea" {
		t.Fatalf("gitea push: %d %+v", code, resp)
	}
	if code, _ := e.send(Gitea, tea, teaHdr("wrong-secret-0123456789", "g-2")); code != http.StatusUnauthorized {
		t.Errorf("gitea wrong signature: %d", code)
	}
	jobs := e.jobs()
	if len(jobs) != 2 || jobs[0].User != "gitea" || jobs[1].User != "jsmith" || jobs[1].Rev != "da1560886d4f094c3e6c9ef40349f7d38b5d27d7" {
		t.Errorf("jobs %+v", jobs)
	}
}

func TestRepoKey(t *testing.T) {
	same := []string{"https://github.com/octo/hello.git", "https://github.com/Octo/Hello", "git@github.com:octo/hello.git",
		"ssh://git@github.com:22/octo/hello.git", "git://github.com/octo/hello.git", "https://user:tok@github.com/octo/hello/"}
	for _, u := range same {
		if k := RepoKey(u); k != "github.com/octo/hello" {
			t.Errorf("RepoKey(%q) = %q", u, k)
		}
	}
	for _, u := range []string{"", "/srv/repo.git", "file:///srv/repo.git", "https://github.com/"} {
		if k := RepoKey(u); k != "" {
			t.Errorf("RepoKey(%q) = %q, want none", u, k)
		}
	}
}

func TestValidateSourceURL(t *testing.T) {
	for _, u := range []string{"https://github.com/o/r.git", "http://127.0.0.1:8000/r.git", "git@github.com:o/r.git", "ssh://git@host:2222/r.git"} {
		if err := ValidateSourceURL(u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"", "/srv/other.git", "file:///srv/other.git", "../x", "-uhttps://x", "https://x/a b", "ext::sh -c id"} {
		if err := ValidateSourceURL(u); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
	if got := RedactURL("https://bob:s3cret@host/r.git"); strings.Contains(got, "s3cret") {
		t.Errorf("RedactURL kept the token: %s", got)
	}
	if got := RedactURL("ssh://git@host/r.git"); got != "ssh://git@host/r.git" {
		t.Errorf("RedactURL changed a URL without a password: %s", got)
	}
}

// FuzzWebhooks feeds random bodies and headers to each handler: it must
// never panic, answer only known statuses, and queue nothing unless the
// request carries a valid signature.
func FuzzWebhooks(f *testing.F) {
	for _, name := range []string{"github-push.json", "github-ping.json", "gitlab-push.json", "gitea-push.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "webhooks", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(0), b, "push", "sha256="+hmacHex(secretA, b), "d")
		f.Add(uint8(1), b, "Push Hook", secretA, "u")
		f.Add(uint8(2), b, "push", hmacHex(secretA, b), "g")
	}
	f.Add(uint8(0), []byte(`{"ref":1}`), "push", "sha256=00", "")
	f.Add(uint8(1), []byte(`[]`), "", "", "")
	f.Add(uint8(2), []byte("\x00\xff"), "ping", "zz", "x")

	// Small in-memory stand-ins: the fuzzer runs the handler many thousand
	// times a second, which the SQLite state would slow to a crawl under
	// coverage instrumentation.
	fa := &fakeApps{settings: map[string]map[string]string{}}
	for app, url := range map[string]string{"web": "https://github.com/octo/hello.git", "lab": "https://gitlab.example.com/mike/diaspora.git", "tea": "https://gitea.example.com/gitea/webhooks.git"} {
		fa.settings[app+"/git"] = map[string]string{apps.GitSourceURL: url, apps.GitWebhookSecret: secretA}
	}
	h := &Webhooks{Apps: fa, Deliveries: &fakeDeliveries{seen: map[string]bool{}}, Queue: &fakeQueue{}, Log: zerolog.Nop(), MaxBody: 64 << 10}
	providers := []string{GitHub, GitLab, Gitea}

	f.Fuzz(func(t *testing.T, which uint8, body []byte, event, signature, delivery string) {
		provider := providers[int(which)%len(providers)]
		req := httptest.NewRequest(http.MethodPost, "/webhooks/"+provider, bytes.NewReader(body))
		valid := false
		switch provider {
		case GitHub:
			req.Header.Set("X-GitHub-Event", event)
			req.Header.Set("X-GitHub-Delivery", delivery)
			req.Header.Set("X-Hub-Signature-256", signature)
			valid = signature == "sha256="+hmacHex(secretA, body)
		case GitLab:
			req.Header.Set("X-Gitlab-Event", event)
			req.Header.Set("X-Gitlab-Event-UUID", delivery)
			req.Header.Set("X-Gitlab-Token", signature)
			valid = signature == secretA
		case Gitea:
			req.Header.Set("X-Gitea-Event", event)
			req.Header.Set("X-Gitea-Delivery", delivery)
			req.Header.Set("X-Gitea-Signature", signature)
			valid = strings.EqualFold(signature, hmacHex(secretA, body))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusAccepted, http.StatusUnauthorized, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("answer is not JSON: %q", rec.Body.String())
		}
		if rec.Code == http.StatusAccepted && !valid {
			t.Fatalf("queued a deploy without a valid signature: %s", rec.Body.String())
		}
		if rec.Code == http.StatusUnauthorized && valid && len(body) > 0 && json.Valid(body) {
			// A valid signature is refused only when the body names no
			// repository an app follows; fine, but never for the seeds.
			var p payload
			if json.Unmarshal(body, &p) == nil && (RepoKey(p.Repository.CloneURL) == "github.com/octo/hello") && provider == GitHub {
				t.Fatalf("valid signature refused: %s", rec.Body.String())
			}
		}
	})
}

// fakeApps is WebhookApps over a map of "scope/namespace" to settings.
type fakeApps struct {
	mu       sync.Mutex
	settings map[string]map[string]string
}

func (f *fakeApps) AppsSettings(_ context.Context, ns string) (map[string]map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]map[string]string{}
	for k, v := range f.settings {
		if name, ok := strings.CutSuffix(k, "/"+ns); ok && name != apps.Global {
			out[name] = maps.Clone(v)
		}
	}
	return out, nil
}

func (f *fakeApps) Settings(_ context.Context, scope, ns string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.settings[scope+"/"+ns]), nil
}

func (f *fakeApps) Setting(ctx context.Context, app, ns, key, def string) (string, error) {
	own, _ := f.Settings(ctx, app, ns)
	if v, ok := own[key]; ok {
		return v, nil
	}
	global, _ := f.Settings(ctx, apps.Global, ns)
	if v, ok := global[key]; ok {
		return v, nil
	}
	return def, nil
}

func (f *fakeApps) SetSetting(_ context.Context, scope, ns, key, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.settings[scope+"/"+ns] == nil {
		f.settings[scope+"/"+ns] = map[string]string{}
	}
	f.settings[scope+"/"+ns][key] = value
	return nil
}

// fakeDeliveries is a WebhookStore in a map.
type fakeDeliveries struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (f *fakeDeliveries) RecordDelivery(_ context.Context, provider, id string, _ time.Time) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := provider + "/" + id
	fresh := !f.seen[k]
	f.seen[k] = true
	return fresh, nil
}

// fakeQueue is an Enqueuer that counts.
type fakeQueue struct {
	mu sync.Mutex
	n  int64
}

func (f *fakeQueue) Enqueue(_ context.Context, j apps.DeployJob) (apps.DeployJob, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	j.ID = f.n
	return j, nil
}

// BenchmarkWebhookPush measures a signed GitHub push from request to 202:
// verify, dedupe and queue in the SQLite state (the deploy itself runs
// later, in the queue).
func BenchmarkWebhookPush(b *testing.B) {
	db, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "rivetr.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	svc := apps.NewService(db)
	ctx := context.Background()
	for _, app := range benchApps() {
		svc.Create(ctx, app)
		svc.SetSetting(ctx, app, "git", apps.GitWebhookSecret, secretA)
	}
	svc.SetSetting(ctx, "web", "git", apps.GitSourceURL, "https://github.com/octo/hello.git")
	h := &Webhooks{Apps: svc, Deliveries: db, Queue: apps.NewQueue(db, nil, zerologPrintf{}, apps.QueueConfig{}), Log: zerolog.Nop()}
	body, err := os.ReadFile(filepath.Join("testdata", "webhooks", "github-push.json"))
	if err != nil {
		b.Fatal(err)
	}
	sig := "sha256=" + hmacHex(secretA, body)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/github", bytes.NewReader(body))
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", "bench-"+strconv.Itoa(i))
		req.Header.Set("X-Hub-Signature-256", sig)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusAccepted {
			b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
	}
}

// benchApps are the apps of BenchmarkWebhookPush: web follows the
// repository, the others (RIVETR_BENCH_APPS in all, default 3) do not.
func benchApps() []string {
	n, _ := strconv.Atoi(os.Getenv("RIVETR_BENCH_APPS"))
	n = max(n, 3)
	out := []string{"web"}
	for i := 1; i < n; i++ {
		out = append(out, "app-"+strconv.Itoa(i))
	}
	return out
}
