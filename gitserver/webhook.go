package gitserver

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/rs/zerolog"

	"github.com/rivetr/rivetr/apps"
)

// Providers whose push webhooks rivetr accepts at /webhooks/PROVIDER.
const (
	GitHub = "github"
	GitLab = "gitlab"
	Gitea  = "gitea"
)

// DefaultMaxWebhookBody bounds a webhook body (GitHub caps its payloads
// at 25 MB; pushes of ordinary size are a few KB).
const DefaultMaxWebhookBody = 5 << 20

// WebhookStore remembers the deliveries already processed.
type WebhookStore interface {
	RecordDelivery(ctx context.Context, provider, id string, at time.Time) (fresh bool, err error)
}

// WebhookApps is the part of the app service webhooks read and write.
type WebhookApps interface {
	AppsSettings(ctx context.Context, namespace string) (map[string]map[string]string, error)
	Setting(ctx context.Context, app, namespace, key, def string) (string, error)
	SetSetting(ctx context.Context, scope, namespace, key, value string) error
}

var _ WebhookApps = (*apps.Service)(nil)

// Enqueuer queues a deploy job.
type Enqueuer interface {
	Enqueue(ctx context.Context, j apps.DeployJob) (apps.DeployJob, error)
}

// Webhooks serves POST /webhooks/{github,gitlab,gitea}: a push event to a
// branch that apps following the repository (git:set APP source-url) deploy
// queues a deploy for each app whose webhook secret signed it.
type Webhooks struct {
	Apps       WebhookApps
	Deliveries WebhookStore
	Queue      Enqueuer
	MaxBody    int64 // default DefaultMaxWebhookBody
	Log        zerolog.Logger
}

// event is a webhook request, parsed far enough to route and authenticate.
type event struct {
	provider  string
	kind      string // push, ping, or the provider's name for others
	delivery  string
	signature string // GitHub/Gitea: hex HMAC; GitLab: the token
	body      []byte

	ref, before, after string
	deleted            bool
	defaultBranch      string
	repoKeys           []string // normalised repository URLs
	pusher             string
}

// hookResponse is the JSON a webhook answers with.
type hookResponse struct {
	Status  string       `json:"status"`
	Message string       `json:"message,omitempty"`
	Queued  []queuedJob  `json:"queued,omitempty"`
	Ignored []ignoredApp `json:"ignored,omitempty"`
}

type queuedJob struct {
	App string `json:"app"`
	Job int64  `json:"job"`
}

type ignoredApp struct {
	App    string `json:"app"`
	Reason string `json:"reason"`
}

func reply(w http.ResponseWriter, code int, r hookResponse) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(r)
}

func (h *Webhooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	provider := strings.TrimPrefix(r.URL.Path, "/webhooks/")
	if provider != GitHub && provider != GitLab && provider != Gitea {
		reply(w, http.StatusNotFound, hookResponse{Status: "error", Message: "unknown provider: use /webhooks/github, /webhooks/gitlab or /webhooks/gitea"})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reply(w, http.StatusMethodNotAllowed, hookResponse{Status: "error", Message: "webhooks are POST requests"})
		return
	}
	max := h.MaxBody
	if max <= 0 {
		max = DefaultMaxWebhookBody
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		reply(w, http.StatusRequestEntityTooLarge, hookResponse{Status: "error", Message: fmt.Sprintf("body larger than %d bytes", max)})
		return
	}
	if err != nil {
		reply(w, http.StatusBadRequest, hookResponse{Status: "error", Message: "read body: " + err.Error()})
		return
	}
	code, resp := h.handle(r.Context(), provider, r.Header, body)
	if code == http.StatusUnauthorized {
		h.Log.Warn().Str("provider", provider).Str("remote", r.RemoteAddr).Msg("webhook refused: missing or wrong signature")
	}
	reply(w, code, resp)
}

// handle authenticates and acts on one webhook; it returns the status and
// the answer.
func (h *Webhooks) handle(ctx context.Context, provider string, hdr http.Header, body []byte) (int, hookResponse) {
	ev := parseHeaders(provider, hdr)
	ev.body = body
	if ev.signature == "" {
		return http.StatusUnauthorized, hookResponse{Status: "unauthorized", Message: "missing signature header: set the webhook secret (git:webhook-url APP shows it)"}
	}
	parseErr := ev.parsePayload()

	// Who follows this repository, and whose secret signed it.
	global, err := h.Apps.Setting(ctx, apps.Global, "git", apps.GitWebhookSecret, "")
	if err != nil {
		return http.StatusInternalServerError, hookResponse{Status: "error", Message: "read settings"}
	}
	followers, err := h.followers(ctx, ev.repoKeys)
	if err != nil {
		return http.StatusInternalServerError, hookResponse{Status: "error", Message: "read settings"}
	}
	var verified []follower
	for _, f := range followers {
		secret := f.secret
		if secret == "" {
			secret = global
		}
		if secret != "" && ev.verify(secret) {
			verified = append(verified, f)
		}
	}
	if len(verified) == 0 && !(global != "" && ev.verify(global)) {
		return http.StatusUnauthorized, hookResponse{Status: "unauthorized", Message: "signature does not match the webhook secret of any app following this repository"}
	}
	if parseErr != nil {
		return http.StatusBadRequest, hookResponse{Status: "error", Message: parseErr.Error()}
	}
	switch ev.kind {
	case "ping":
		return http.StatusOK, hookResponse{Status: "pong", Message: fmt.Sprintf("%d app(s) follow this repository", len(verified))}
	case "push":
	default:
		return http.StatusOK, hookResponse{Status: "ignored", Message: fmt.Sprintf("event %q deploys nothing; only push events do", ev.kind)}
	}
	if len(verified) == 0 {
		msg := "no app follows this repository (git:set APP source-url URL)"
		if len(followers) > 0 {
			msg = "the apps following this repository have their own webhook secrets; this one is the global secret"
		}
		return http.StatusOK, hookResponse{Status: "ignored", Message: msg}
	}
	id := ev.delivery
	if id == "" {
		sum := sha256.Sum256(body)
		id = "sha256:" + hex.EncodeToString(sum[:])
	}
	fresh, err := h.Deliveries.RecordDelivery(ctx, provider, id, time.Now().UTC())
	if err != nil {
		return http.StatusInternalServerError, hookResponse{Status: "error", Message: "record delivery"}
	}
	if !fresh {
		return http.StatusOK, hookResponse{Status: "duplicate", Message: "delivery " + id + " was already processed"}
	}

	resp := hookResponse{Status: "ignored"}
	branch, _ := strings.CutPrefix(ev.ref, "refs/heads/")
	for _, f := range verified {
		want := f.branch
		if want == "" {
			want = ev.defaultBranch
		}
		if want == "" {
			want = "main"
		}
		var note string
		switch {
		case !strings.HasPrefix(ev.ref, "refs/heads/"):
			note = fmt.Sprintf("%s is not a branch", ev.ref)
		case branch != want:
			note = fmt.Sprintf("push to %s; %s deploys %s", branch, f.app, want)
		case ev.deleted:
			note = fmt.Sprintf("branch %s was deleted", branch)
		}
		if note != "" {
			resp.Ignored = append(resp.Ignored, ignoredApp{App: f.app, Reason: note})
			h.remember(ctx, f.app, ev, id, "ignored: "+note)
			continue
		}
		j, err := h.Queue.Enqueue(ctx, apps.DeployJob{App: f.app, Trigger: provider, Ref: branch, Rev: ev.after, Delivery: id, User: ev.pusher})
		if err != nil {
			h.Log.Error().Err(err).Str("app", f.app).Msg("queue webhook deploy")
			resp.Ignored = append(resp.Ignored, ignoredApp{App: f.app, Reason: "could not queue the deploy"})
			continue
		}
		resp.Queued = append(resp.Queued, queuedJob{App: f.app, Job: j.ID})
		h.remember(ctx, f.app, ev, id, fmt.Sprintf("queued deploy #%d", j.ID))
		h.Log.Info().Str("app", f.app).Str("provider", provider).Str("delivery", id).Str("rev", ev.after).
			Int64("job", j.ID).Msg("webhook queued a deploy")
	}
	if len(resp.Queued) == 0 {
		return http.StatusOK, resp
	}
	resp.Status = "queued"
	return http.StatusAccepted, resp
}

// remember records the last delivery on the app, for git:report.
func (h *Webhooks) remember(ctx context.Context, app string, ev event, id, outcome string) {
	v := fmt.Sprintf("%s %s %s %.7s delivery %s: %s", time.Now().UTC().Format(time.RFC3339), ev.provider,
		strings.TrimPrefix(ev.ref, "refs/heads/"), ev.after, id, outcome)
	if err := h.Apps.SetSetting(ctx, app, apps.GitSyncNS, "last-webhook", v); err != nil {
		h.Log.Warn().Err(err).Str("app", app).Msg("record webhook delivery")
	}
}

// follower is an app whose source-url is the event's repository.
type follower struct {
	app, secret, branch string
}

func (h *Webhooks) followers(ctx context.Context, keys []string) ([]follower, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	all, err := h.Apps.AppsSettings(ctx, "git") // one query, however many apps
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(all))
	for name := range all {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []follower
	for _, name := range names {
		s := all[name]
		src := RepoKey(s[apps.GitSourceURL])
		if src == "" {
			continue
		}
		for _, k := range keys {
			if k == src {
				out = append(out, follower{app: name, secret: s[apps.GitWebhookSecret], branch: s[apps.GitSourceBranch]})
				break
			}
		}
	}
	return out, nil
}

// RepoKey normalises a repository URL so the HTTPS, SSH and web URLs of one
// repository compare equal: lower-case host (no port, no user) and path,
// without ".git" and slashes around it. "" if url is not a remote URL.
func RepoKey(url string) string {
	if url == "" {
		return ""
	}
	ep, err := transport.NewEndpoint(url)
	if err != nil || ep.Host == "" || ep.Protocol == "file" {
		return ""
	}
	p := strings.Trim(ep.Path, "/")
	p = strings.TrimSuffix(p, ".git")
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return ""
	}
	return strings.ToLower(ep.Host + "/" + p)
}

// parseHeaders reads the provider's event, delivery and signature headers.
func parseHeaders(provider string, hdr http.Header) event {
	ev := event{provider: provider}
	switch provider {
	case GitHub:
		ev.kind = hdr.Get("X-GitHub-Event")
		ev.delivery = hdr.Get("X-GitHub-Delivery")
		if sig, ok := strings.CutPrefix(hdr.Get("X-Hub-Signature-256"), "sha256="); ok {
			ev.signature = sig
		}
	case Gitea:
		ev.kind = hdr.Get("X-Gitea-Event")
		ev.delivery = hdr.Get("X-Gitea-Delivery")
		ev.signature = hdr.Get("X-Gitea-Signature")
	case GitLab:
		switch hdr.Get("X-Gitlab-Event") {
		case "Push Hook":
			ev.kind = "push"
		default:
			ev.kind = hdr.Get("X-Gitlab-Event")
		}
		// Idempotency-Key stays the same across GitLab's retries.
		ev.delivery = hdr.Get("Idempotency-Key")
		if ev.delivery == "" {
			ev.delivery = hdr.Get("X-Gitlab-Event-UUID")
		}
		ev.signature = hdr.Get("X-Gitlab-Token")
	}
	if len(ev.delivery) > 200 {
		ev.delivery = ev.delivery[:200]
	}
	return ev
}

// verify checks the signature against secret in constant time: an HMAC-
// SHA256 of the raw body for GitHub and Gitea, the token itself for GitLab
// (compared as SHA-256 digests, so the length leaks nothing either).
func (ev *event) verify(secret string) bool {
	if ev.provider == GitLab {
		a, b := sha256.Sum256([]byte(ev.signature)), sha256.Sum256([]byte(secret))
		return subtle.ConstantTimeCompare(a[:], b[:]) == 1
	}
	got, err := hex.DecodeString(ev.signature)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(ev.body)
	return hmac.Equal(got, mac.Sum(nil))
}

// payload holds the fields of GitHub's, Gitea's and GitLab's push (and
// GitHub's ping) events rivetr reads.
type payload struct {
	Ref      string `json:"ref"`
	Before   string `json:"before"`
	After    string `json:"after"`
	Deleted  bool   `json:"deleted"`
	Zen      string `json:"zen"`
	UserName string `json:"user_username"` // GitLab
	Pusher   struct {
		Name     string `json:"name"`
		Login    string `json:"login"`
		Username string `json:"username"`
	} `json:"pusher"`
	Repository struct {
		CloneURL      string `json:"clone_url"`
		SSHURL        string `json:"ssh_url"`
		HTMLURL       string `json:"html_url"`
		GitHTTPURL    string `json:"git_http_url"` // GitLab
		GitSSHURL     string `json:"git_ssh_url"`  // GitLab
		URL           string `json:"url"`
		Homepage      string `json:"homepage"` // GitLab
		DefaultBranch string `json:"default_branch"`
	} `json:"repository"`
	Project struct { // GitLab
		GitHTTPURL    string `json:"git_http_url"`
		GitSSHURL     string `json:"git_ssh_url"`
		WebURL        string `json:"web_url"`
		DefaultBranch string `json:"default_branch"`
	} `json:"project"`
}

const zeroSHA = "0000000000000000000000000000000000000000"

// parsePayload reads the event's body; an error means it is no JSON object.
func (ev *event) parsePayload() error {
	var p payload
	if err := json.Unmarshal(ev.body, &p); err != nil {
		return fmt.Errorf("body is not a %s event: %v", ev.provider, err)
	}
	ev.ref, ev.before, ev.after = p.Ref, p.Before, p.After
	ev.deleted = p.Deleted || p.After == zeroSHA
	ev.defaultBranch = p.Repository.DefaultBranch
	if ev.defaultBranch == "" {
		ev.defaultBranch = p.Project.DefaultBranch
	}
	for _, s := range []string{p.Pusher.Login, p.Pusher.Username, p.Pusher.Name, p.UserName} {
		if s != "" {
			ev.pusher = s
			break
		}
	}
	if len(ev.pusher) > 100 {
		ev.pusher = ev.pusher[:100]
	}
	seen := map[string]bool{}
	for _, u := range []string{p.Repository.CloneURL, p.Repository.SSHURL, p.Repository.HTMLURL, p.Repository.GitHTTPURL,
		p.Repository.GitSSHURL, p.Repository.URL, p.Repository.Homepage, p.Project.GitHTTPURL, p.Project.GitSSHURL, p.Project.WebURL} {
		if k := RepoKey(u); k != "" && !seen[k] {
			seen[k] = true
			ev.repoKeys = append(ev.repoKeys, k)
		}
	}
	if ev.provider == GitHub && ev.kind == "" && p.Zen != "" {
		ev.kind = "ping"
	}
	if ev.kind == "push" && (ev.ref == "" || (!ev.deleted && !revRe.MatchString(ev.after))) {
		return errors.New("push event without ref or after")
	}
	return nil
}
