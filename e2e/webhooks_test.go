package e2e

// Webhook mirroring end to end: an app on the same daemon plays GitHub's
// part (its repository, reached over rivetr's own smart HTTP with a token
// and over its SSH server with a deploy key, never deploys itself); the
// test pushes to it with the real git client and sends webhooks shaped
// like GitHub's, GitLab's and Gitea's push events to the API.

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// githubPush is a push event in GitHub's documented shape (the fields
// rivetr reads plus the usual others).
func githubPush(cloneURL, ref, before, after string) []byte {
	b, _ := json.Marshal(map[string]any{
		"ref": ref, "before": before, "after": after, "created": false, "deleted": false, "forced": false,
		"compare": "https://github.com/octo/hello/compare/x...y",
		"repository": map[string]any{
			"id": 1, "name": "hello", "full_name": "octo/hello", "private": true,
			"html_url": "https://github.com/octo/hello", "clone_url": cloneURL,
			"ssh_url": "git@github.com:octo/hello.git", "default_branch": "main",
		},
		"pusher":      map[string]any{"name": "octocat", "email": "octocat@example.com"},
		"sender":      map[string]any{"login": "octocat", "id": 1},
		"head_commit": map[string]any{"id": after, "message": "change"},
		"commits":     []any{map[string]any{"id": after, "message": "change"}},
	})
	return b
}

// gitlabPush is a push event in GitLab's documented shape.
func gitlabPush(httpURL, ref, before, after string) []byte {
	b, _ := json.Marshal(map[string]any{
		"object_kind": "push", "event_name": "push", "ref": ref, "before": before, "after": after,
		"checkout_sha": after, "user_username": "jsmith", "user_name": "John Smith",
		"project": map[string]any{"id": 15, "git_http_url": httpURL, "git_ssh_url": "git@gitlab.example.com:mike/diaspora.git",
			"web_url": "https://gitlab.example.com/mike/diaspora", "default_branch": "main", "path_with_namespace": "mike/diaspora"},
		"repository":          map[string]any{"name": "Diaspora", "git_http_url": httpURL, "url": httpURL},
		"commits":             []any{map[string]any{"id": after, "message": "change"}},
		"total_commits_count": 1,
	})
	return b
}

// giteaPush is a push event in Gitea's documented shape.
func giteaPush(cloneURL, ref, before, after string) []byte {
	b, _ := json.Marshal(map[string]any{
		"ref": ref, "before": before, "after": after, "compare_url": "",
		"repository": map[string]any{"id": 140, "name": "webhooks", "full_name": "gitea/webhooks",
			"clone_url": cloneURL, "html_url": "https://gitea.example.com/gitea/webhooks", "default_branch": "main"},
		"pusher":  map[string]any{"login": "gitea", "username": "gitea"},
		"commits": []any{map[string]any{"id": after, "message": "change"}},
	})
	return b
}

func hmacSHA256(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// hook POSTs a webhook to the API and returns the status and decoded body.
func (s *server) hook(t *testing.T, provider string, body []byte, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/webhooks/%s", s.apiPort, provider), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("POST /webhooks/%s: %v", provider, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	t.Logf("POST /webhooks/%s: %d in %v: %v", provider, resp.StatusCode, time.Since(start).Round(time.Millisecond), out)
	return resp.StatusCode, out
}

func githubHeaders(secret, delivery string, body []byte) map[string]string {
	return map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery,
		"X-Hub-Signature-256": "sha256=" + hmacSHA256(secret, body), "User-Agent": "GitHub-Hookshot/e2e"}
}

type deployJob struct {
	ID       int64  `json:"id"`
	App      string `json:"app"`
	Trigger  string `json:"trigger"`
	Rev      string `json:"rev"`
	Delivery string `json:"delivery"`
	Status   string `json:"status"`
	Release  int    `json:"release"`
	Detail   string `json:"detail"`
}

func (c *client) deployJobs(t *testing.T, app string) []deployJob {
	t.Helper()
	var jobs []deployJob
	if err := json.Unmarshal([]byte(c.must(t, "deploys:list", app, "--format", "json").Stdout), &jobs); err != nil {
		t.Fatal(err)
	}
	return jobs
}

// waitJobs waits until none of app's jobs is queued or running.
func (c *client) waitJobs(t *testing.T, app string) []deployJob {
	t.Helper()
	deadline := time.Now().Add(pushTimeout)
	for {
		jobs := c.deployJobs(t, app)
		busy := false
		for _, j := range jobs {
			busy = busy || j.Status == "queued" || j.Status == "running"
		}
		if !busy {
			return jobs
		}
		if time.Now().After(deadline) {
			t.Fatalf("deploys of %s still busy after %v: %+v", app, pushTimeout, jobs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestWebhookMirroring(t *testing.T) {
	t.Parallel()
	eng := needEngine(t)
	srv, c := startPushServer(t, eng)
	up, app := randomName("up"), randomName("web")
	cleanupApp(t, srv, eng, app)
	cleanupApp(t, srv, eng, up)

	// The "GitHub" repository: pushes to it never deploy it.
	c.must(t, "apps:create", up)
	c.must(t, "git:set", up, "deploy-branch", "never-deployed")
	repo := newAppRepo(t, c, "v1")
	rev1 := headRev(t, c, repo)
	pushUp := func(ref string) {
		t.Helper()
		res := c.mustGit(t, repo, "push", "-f", c.sshRemote(up), ref)
		if strings.Contains(res.Stderr, "Building") {
			t.Fatalf("a push to the upstream built it:\n%s", res)
		}
	}
	pushUp("main")
	token := nonEmptyLines(srv.mustCLI(t, nil, "tokens:create", "mirror").Stdout)
	secretToken := token[len(token)-1]
	source := fmt.Sprintf("http://127.0.0.1:%d/%s.git", srv.apiPort, up)

	c.must(t, "apps:create", app)
	c.must(t, "git:set", app, "source-url", source)
	c.must(t, "git:set", app, "source-branch", "main")
	var secret string

	if !t.Run("private repository needs a token", func(t *testing.T) {
		wantError(t, c.ssh(t, nil, "git:sync", app), 1, "git:auth")
		res := c.must(t, "git:auth", fmt.Sprintf("127.0.0.1:%d", srv.apiPort), "ci", secretToken)
		if strings.Contains(res.Stdout+res.Stderr, secretToken) {
			t.Errorf("git:auth printed the token back:\n%s", res)
		}
		res = c.must(t, "git:sync", app)
		if !strings.Contains(res.Stdout, "main is now at "+rev1[:7]) {
			t.Errorf("git:sync output:\n%s", res)
		}
		if got := strings.TrimSpace(c.must(t, "git:report", app, "--git-last-sync-rev").Stdout); got != rev1 {
			t.Errorf("last synced rev %q, want %s", got, rev1)
		}
	}) {
		return
	}

	if !t.Run("webhook url and secret", func(t *testing.T) {
		res := c.must(t, "git:webhook-url", app)
		for _, line := range nonEmptyLines(res.Stdout) {
			if v, ok := strings.CutPrefix(line, "Secret:"); ok {
				secret = strings.TrimSpace(v)
			}
		}
		if len(secret) != 64 || !strings.Contains(res.Stdout, fmt.Sprintf("http://127.0.0.1:%d/webhooks/github", srv.apiPort)) {
			t.Fatalf("git:webhook-url:\n%s", res)
		}
		report := c.must(t, "git:report", app).Stdout
		if strings.Contains(report, secret) || strings.Contains(report, secretToken) {
			t.Errorf("git:report shows a secret:\n%s", report)
		}
		if !strings.Contains(report, "(set)") {
			t.Errorf("git:report does not say a webhook secret is set:\n%s", report)
		}
	}) {
		return
	}

	if !t.Run("a push and its webhook deploy the new revision", func(t *testing.T) {
		body := githubPush(source, "refs/heads/main", zeroRev, rev1)
		code, out := srv.hook(t, "github", body, githubHeaders(secret, "gh-1", body))
		if code != http.StatusAccepted || out["status"] != "queued" {
			t.Fatalf("signed push: %d %v", code, out)
		}
		jobs := c.waitJobs(t, app)
		if len(jobs) != 1 || jobs[0].Status != "succeeded" || jobs[0].Rev != rev1 || jobs[0].Release != 1 || jobs[0].Trigger != "github" {
			t.Fatalf("jobs %+v", jobs)
		}
		wantServes(t, srv, app, "/", "hello v1")
		rels := c.releases(t, app)
		if len(rels) != 1 || rels[0].Status != "deployed" || rels[0].Reason != "webhook" || rels[0].By != "github:octocat" {
			t.Errorf("releases %+v", rels)
		}
		if !strings.Contains(c.must(t, "git:report", app, "--git-last-webhook").Stdout, "delivery gh-1: queued deploy #") {
			t.Errorf("git:report does not show the last delivery")
		}
	}) {
		return
	}

	t.Run("wrong signature, replay, other branch and ping deploy nothing", func(t *testing.T) {
		rev := commitDockerfile(t, c, repo, "v9")
		pushUp("HEAD:feature")
		c.mustGit(t, repo, "reset", "-q", "--hard", "HEAD~1")
		body := githubPush(source, "refs/heads/main", rev1, rev)
		if code, _ := srv.hook(t, "github", body, githubHeaders("not-the-secret-0123456789", "gh-2", body)); code != http.StatusUnauthorized {
			t.Errorf("wrong signature: %d, want 401", code)
		}
		unsigned := githubHeaders(secret, "gh-3", body)
		delete(unsigned, "X-Hub-Signature-256")
		if code, _ := srv.hook(t, "github", body, unsigned); code != http.StatusUnauthorized {
			t.Errorf("unsigned: %d, want 401", code)
		}
		first := githubPush(source, "refs/heads/main", zeroRev, rev1)
		if code, out := srv.hook(t, "github", first, githubHeaders(secret, "gh-1", first)); code != http.StatusOK || out["status"] != "duplicate" {
			t.Errorf("replayed delivery: %d %v", code, out)
		}
		feature := githubPush(source, "refs/heads/feature", zeroRev, rev)
		if code, out := srv.hook(t, "github", feature, githubHeaders(secret, "gh-4", feature)); code != http.StatusOK || out["status"] != "ignored" {
			t.Errorf("push to another branch: %d %v", code, out)
		}
		ping := []byte(`{"zen":"Keep it logically awesome.","hook_id":1,"repository":{"clone_url":"` + source + `"}}`)
		pingHdr := githubHeaders(secret, "gh-5", ping)
		pingHdr["X-GitHub-Event"] = "ping"
		if code, out := srv.hook(t, "github", ping, pingHdr); code != http.StatusOK || out["status"] != "pong" {
			t.Errorf("ping: %d %v", code, out)
		}
		big := bytes.Repeat([]byte("x"), 6<<20)
		if code, _ := srv.hook(t, "github", big, githubHeaders(secret, "gh-6", big)); code != http.StatusRequestEntityTooLarge {
			t.Errorf("6 MB body: %d, want 413", code)
		}
		if jobs := c.deployJobs(t, app); len(jobs) != 1 {
			t.Errorf("%d jobs after refused and ignored webhooks, want 1: %+v", len(jobs), jobs)
		}
		wantStillServes(t, srv, app, "hello v1")
	})

	t.Run("gitlab and gitea pushes deploy", func(t *testing.T) {
		rev2 := commitDockerfile(t, c, repo, "v2")
		pushUp("main")
		body := gitlabPush(source, "refs/heads/main", rev1, rev2)
		if code, _ := srv.hook(t, "gitlab", body, map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "wrong-token-0123456789", "X-Gitlab-Event-UUID": "gl-0"}); code != http.StatusUnauthorized {
			t.Errorf("gitlab wrong token: %d", code)
		}
		code, _ := srv.hook(t, "gitlab", body, map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": secret, "X-Gitlab-Event-UUID": "gl-1"})
		if code != http.StatusAccepted {
			t.Fatalf("gitlab push: %d", code)
		}
		c.waitJobs(t, app)
		wantServes(t, srv, app, "/", "hello v2")

		rev3 := commitDockerfile(t, c, repo, "v3")
		pushUp("main")
		body = giteaPush(source, "refs/heads/main", rev2, rev3)
		code, _ = srv.hook(t, "gitea", body, map[string]string{"X-Gitea-Event": "push", "X-Gitea-Delivery": "gt-1", "X-Gitea-Signature": hmacSHA256(secret, body)})
		if code != http.StatusAccepted {
			t.Fatalf("gitea push: %d", code)
		}
		jobs := c.waitJobs(t, app)
		wantServes(t, srv, app, "/", "hello v3")
		if jobs[0].Trigger != "gitea" || jobs[0].Status != "succeeded" || jobs[0].Rev != rev3 {
			t.Errorf("gitea job %+v", jobs[0])
		}
	})

	t.Run("five webhooks in a burst deploy once, the newest", func(t *testing.T) {
		before := len(c.releases(t, app))
		var bodies [][]byte
		prev := headRev(t, c, repo)
		var newest string
		for i := 4; i <= 8; i++ {
			newest = commitDockerfile(t, c, repo, fmt.Sprintf("v%d", i))
			pushUp("main")
			bodies = append(bodies, githubPush(source, "refs/heads/main", prev, newest))
			prev = newest
		}
		for i, body := range bodies {
			if code, _ := srv.hook(t, "github", body, githubHeaders(secret, fmt.Sprintf("burst-%d", i), body)); code != http.StatusAccepted {
				t.Fatalf("burst webhook %d: %d", i, code)
			}
		}
		jobs := c.waitJobs(t, app)
		succeeded, coalesced := 0, 0
		for _, j := range jobs[:5] {
			switch j.Status {
			case "succeeded":
				succeeded++
				if j.Delivery != "burst-4" {
					t.Errorf("the job that ran is %s, want the newest (burst-4)", j.Delivery)
				}
			case "coalesced":
				coalesced++
			}
		}
		if succeeded != 1 || coalesced != 4 {
			t.Errorf("burst: %d succeeded, %d coalesced, want 1 and 4: %+v", succeeded, coalesced, jobs[:5])
		}
		wantServes(t, srv, app, "/", "hello v8")
		wantServes(t, srv, app, "/env/GIT_REV", newest)
		if after := len(c.releases(t, app)); after != before+1 {
			t.Errorf("%d releases after the burst, want %d", after, before+1)
		}
	})

	t.Run("a queued deploy can be cancelled", func(t *testing.T) {
		rev := commitDockerfile(t, c, repo, "v10")
		pushUp("main")
		body := githubPush(source, "refs/heads/main", zeroRev, rev)
		code, out := srv.hook(t, "github", body, githubHeaders(secret, "cancel-1", body))
		if code != http.StatusAccepted {
			t.Fatalf("webhook: %d", code)
		}
		id := int64(out["queued"].([]any)[0].(map[string]any)["job"].(float64))
		res := c.must(t, "deploys:cancel", fmt.Sprint(id))
		if !strings.Contains(res.Stdout, fmt.Sprintf("Cancelled deploy #%d", id)) {
			t.Errorf("deploys:cancel:\n%s", res)
		}
		jobs := c.waitJobs(t, app)
		if jobs[0].ID != id || jobs[0].Status != "cancelled" {
			t.Errorf("cancelled job %+v", jobs[0])
		}
		wantError(t, c.ssh(t, nil, "deploys:cancel", fmt.Sprint(id)), 1, "already cancelled")
		wantStillServes(t, srv, app, "hello v8")
	})

	t.Run("a private SSH remote syncs with a deploy key", func(t *testing.T) {
		res := c.must(t, "git:generate-deploy-key", app)
		pub := nonEmptyLines(res.Stdout)[len(nonEmptyLines(res.Stdout))-1]
		if !strings.HasPrefix(pub, "ssh-ed25519 ") {
			t.Fatalf("git:generate-deploy-key:\n%s", res)
		}
		if got := strings.TrimSpace(c.must(t, "git:public-key", app).Stdout); got != pub {
			t.Errorf("git:public-key = %q, want %q", got, pub)
		}
		wantError(t, c.ssh(t, nil, "git:generate-deploy-key", app), 1, "already has a deploy key")
		sshSource := fmt.Sprintf("ssh://git@127.0.0.1:%d/%s.git", srv.sshPort, up)
		// Not yet allowed in by the "GitHub" side.
		wantError(t, c.ssh(t, nil, "git:sync", app, sshSource, "main"), 1, "deploy key")
		srv.mustCLI(t, []byte(pub+"\n"), "ssh-keys:add", "deploy-"+app, "-")
		// The cancelled deploy left v10 upstream only: the sync builds it.
		res = c.must(t, "git:sync", "--build-if-changes", app, sshSource, "main")
		if !strings.Contains(res.Stdout, "main is now at") || !strings.Contains(res.Stdout, "Application deployed") {
			t.Errorf("git:sync over SSH:\n%s", res)
		}
		wantServes(t, srv, app, "/", "hello v10")
		res = c.must(t, "git:sync", "--build-if-changes", app, sshSource, "main")
		if !strings.Contains(res.Stdout, "is already at") || !strings.Contains(res.Stdout, "No changes: not deploying") {
			t.Errorf("git:sync over SSH with nothing new:\n%s", res)
		}
		known, err := os.ReadFile(filepath.Join(srv.dataDir, "ssh_known_hosts"))
		if err != nil || !strings.Contains(string(known), fmt.Sprintf("[127.0.0.1]:%d ssh-ed25519 ", srv.sshPort)) {
			t.Errorf("known_hosts after the first SSH sync: %q, %v", known, err)
		}
		for _, out := range []string{c.must(t, "git:report", app).Stdout, srv.stderr.String()} {
			if strings.Contains(out, "PRIVATE KEY") || strings.Contains(out, secretToken) || strings.Contains(out, secret) {
				t.Errorf("a secret is shown or logged:\n%s", out)
			}
		}
	})

	t.Run("a queued deploy survives a restart", func(t *testing.T) {
		rev := commitDockerfile(t, c, repo, "v11")
		pushUp("main")
		body := githubPush(source, "refs/heads/main", zeroRev, rev)
		if code, _ := srv.hook(t, "github", body, githubHeaders(secret, "restart-1", body)); code != http.StatusAccepted {
			t.Fatalf("webhook: %d", code)
		}
		srv.stop() // within the queue's settle time: the job is still queued
		srv.start()
		jobs := c.waitJobs(t, app)
		if jobs[0].Delivery != "restart-1" || jobs[0].Status != "succeeded" {
			t.Errorf("job queued before the restart: %+v", jobs[0])
		}
		wantServes(t, srv, app, "/", "hello v11")
	})
}

const zeroRev = "0000000000000000000000000000000000000000"
