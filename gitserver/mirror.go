package gitserver

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/rivetr/rivetr/apps"
)

// MirrorStore is the part of the state a mirror reads: HTTPS logins and
// deploy keys.
type MirrorStore interface {
	GitCredential(ctx context.Context, host string) (c apps.GitCredential, ok bool, err error)
	DeployKey(ctx context.Context, app string) (k apps.DeployKey, ok bool, err error)
}

// Mirror fetches remote repositories (GitHub, GitLab, Gitea, any git
// server over HTTPS or SSH) into apps' repositories with go-git, and runs
// the deploy jobs webhooks queue.
type Mirror struct {
	Repos    *Repos
	Apps     *apps.Service
	Store    MirrorStore
	Deployer Deployer
	// KnownHosts is the known_hosts file of SSH remotes: a host's key is
	// recorded the first time and must match afterwards.
	KnownHosts string

	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

// syncRef is the temporary ref a fetch lands in before the branch moves.
const syncRef = "refs/rivetr/sync"

// ValidateSourceURL accepts https://, http://, ssh:// and git:// URLs and
// scp-like user@host:path remotes. Local paths and file:// URLs are
// refused: they would read other repositories on this server.
func ValidateSourceURL(raw string) error {
	if raw == "" || len(raw) > 2048 || strings.HasPrefix(raw, "-") || strings.ContainsAny(raw, " \t\r\n\x00") {
		return fmt.Errorf("%q is not a repository URL", raw)
	}
	ep, err := transport.NewEndpoint(raw)
	if err != nil {
		return fmt.Errorf("%q is not a repository URL: %w", raw, err)
	}
	switch ep.Protocol {
	case "https", "http", "ssh", "git":
	default:
		return fmt.Errorf("%q: use an https://, ssh:// or git@host:path URL (local paths and %s:// are refused)", raw, ep.Protocol)
	}
	if ep.Host == "" || strings.HasPrefix(ep.Host, "-") {
		return fmt.Errorf("%q has no host", raw)
	}
	return nil
}

// RedactURL drops a password or token written into a URL.
func RedactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok || strings.Contains(userinfo, "/") || !strings.Contains(userinfo, ":") {
		return raw
	}
	user, _, _ := strings.Cut(userinfo, ":")
	return scheme + "://" + user + ":xxxxx@" + host
}

func (m *Mirror) lock(app string) func() {
	m.mu.Lock()
	if m.locks == nil {
		m.locks = map[string]*sync.Mutex{}
	}
	l, ok := m.locks[app]
	if !ok {
		l = &sync.Mutex{}
		m.locks[app] = l
	}
	m.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// Sync fetches ref of the repository at url into app's deploy branch (set
// to the fetched branch, or main, when the app has none yet). ref is a
// branch, tag, full ref or commit; "" is the remote's default branch.
func (m *Mirror) Sync(ctx context.Context, app, url, ref string, out io.Writer) (apps.SyncResult, error) {
	res := apps.SyncResult{URL: url}
	if err := ValidateSourceURL(url); err != nil {
		return res, apps.Errorf(apps.ErrInvalidValue, "%v", err)
	}
	if ref != "" {
		if err := apps.ValidateGitRef(ref); err != nil {
			return res, apps.Errorf(apps.ErrInvalidValue, "%v", err)
		}
	}
	if _, err := m.Apps.App(ctx, app); err != nil {
		return res, err
	}
	defer m.lock(app)()
	if _, err := m.Repos.Ensure(app); err != nil {
		return res, err
	}
	repo, err := git.PlainOpen(m.Repos.Path(app))
	if err != nil {
		return res, fmt.Errorf("open repository of %s: %w", app, err)
	}
	auth, err := m.auth(ctx, app, url)
	if err != nil {
		return res, err
	}
	remote := git.NewRemote(repo.Storer, &config.RemoteConfig{Name: "source", URLs: []string{url}})
	shown := RedactURL(url)
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: auth})
	if err != nil {
		return res, m.remoteError(shown, err)
	}
	remoteRef, isSHA, err := resolveRemoteRef(refs, ref)
	if err != nil {
		return res, apps.Errorf(apps.ErrInvalidValue, "%s: %v", shown, err)
	}
	res.Ref = remoteRef
	branch, err := m.Apps.Setting(ctx, app, "git", apps.GitDeployBranch, "")
	if err != nil {
		return res, err
	}
	if branch == "" {
		branch = "main"
		if b, ok := strings.CutPrefix(remoteRef, "refs/heads/"); ok {
			branch = b
		}
		if err := m.Apps.SetSetting(ctx, app, "git", apps.GitDeployBranch, branch); err != nil {
			return res, err
		}
	}
	res.Branch = branch
	if prev, err := m.Repos.RefRev(app, "refs/heads/"+branch); err == nil {
		res.Previous = prev
	}

	fmt.Fprintf(out, "-----> Fetching %s (%s) into %s\n", shown, strings.TrimPrefix(remoteRef, "refs/heads/"), app)
	specs := []config.RefSpec{config.RefSpec("+" + remoteRef + ":" + syncRef)}
	if isSHA {
		specs = []config.RefSpec{"+refs/heads/*:" + syncRef + "-heads/*", "+refs/tags/*:" + syncRef + "-tags/*"}
	}
	err = remote.FetchContext(ctx, &git.FetchOptions{Auth: auth, RefSpecs: specs, Tags: git.NoTags, Force: true})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return res, m.remoteError(shown, err)
	}
	defer cleanSyncRefs(repo)
	var commit *object.Commit
	if isSHA {
		commit, err = repo.CommitObject(plumbing.NewHash(remoteRef))
		if err != nil {
			return res, apps.Errorf(apps.ErrInvalidValue, "Commit %s is not on any branch or tag of %s", remoteRef[:7], shown)
		}
	} else {
		fetched, err := repo.Reference(syncRef, true)
		if err != nil {
			return res, fmt.Errorf("read fetched %s: %w", remoteRef, err)
		}
		commit, err = peel(repo, fetched.Hash())
		if err != nil {
			return res, apps.Errorf(apps.ErrInvalidValue, "%s of %s: %v", remoteRef, shown, err)
		}
	}
	res.Rev = commit.Hash.String()
	if err := repo.Storer.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName(branch), commit.Hash)); err != nil {
		return res, fmt.Errorf("update %s of %s: %w", branch, app, err)
	}
	if err := m.Repos.SetHead(app, branch); err != nil {
		return res, err
	}
	if res.Changed() {
		fmt.Fprintf(out, "-----> %s is now at %.7s (was %s)\n", branch, res.Rev, orNone(res.Previous))
	} else {
		fmt.Fprintf(out, "-----> %s is already at %.7s\n", branch, res.Rev)
	}
	now := time.Now().UTC().Format(time.RFC3339)
	for k, v := range map[string]string{"last-url": RedactURL(url), "last-ref": remoteRef, "last-rev": res.Rev, "last-sync-at": now} {
		if err := m.Apps.SetSetting(ctx, app, apps.GitSyncNS, k, v); err != nil {
			return res, err
		}
	}
	return res, nil
}

func orNone(rev string) string {
	if rev == "" {
		return "empty"
	}
	return apps.ShortRev(rev)
}

// resolveRemoteRef finds ref among the remote's refs: "" is the default
// branch (HEAD), then a full ref, a branch, a tag, or a commit hash.
func resolveRemoteRef(refs []*plumbing.Reference, ref string) (string, bool, error) {
	have := map[plumbing.ReferenceName]*plumbing.Reference{}
	for _, r := range refs {
		have[r.Name()] = r
	}
	if ref == "" {
		if head, ok := have[plumbing.HEAD]; ok && head.Type() == plumbing.SymbolicReference {
			return head.Target().String(), false, nil
		}
		for _, b := range []string{"main", "master"} {
			if _, ok := have[plumbing.NewBranchReferenceName(b)]; ok {
				return "refs/heads/" + b, false, nil
			}
		}
		return "", false, errors.New("the repository has no default branch: name one")
	}
	for _, name := range []string{ref, "refs/heads/" + ref, "refs/tags/" + ref} {
		if _, ok := have[plumbing.ReferenceName(name)]; ok && strings.HasPrefix(name, "refs/") {
			return name, false, nil
		}
	}
	if revRe.MatchString(ref) {
		return ref, true, nil
	}
	return "", false, fmt.Errorf("no branch, tag or commit %s", ref)
}

// peel follows annotated tags to the commit.
func peel(repo *git.Repository, h plumbing.Hash) (*object.Commit, error) {
	for range 10 {
		if c, err := repo.CommitObject(h); err == nil {
			return c, nil
		}
		tag, err := repo.TagObject(h)
		if err != nil {
			return nil, errors.New("does not point to a commit")
		}
		h = tag.Target
	}
	return nil, errors.New("tag chain too long")
}

// cleanSyncRefs removes the temporary refs of a fetch.
func cleanSyncRefs(repo *git.Repository) {
	iter, err := repo.Storer.IterReferences()
	if err != nil {
		return
	}
	var names []plumbing.ReferenceName
	iter.ForEach(func(r *plumbing.Reference) error {
		if strings.HasPrefix(r.Name().String(), syncRef) {
			names = append(names, r.Name())
		}
		return nil
	})
	for _, n := range names {
		repo.Storer.RemoveReference(n)
	}
}

// remoteError turns a transport failure into a message that says what to do.
func (m *Mirror) remoteError(url string, err error) error {
	switch {
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed):
		return apps.Errorf(apps.ErrDeployFailed, "%s refused access: for HTTPS run `git:auth HOST USER TOKEN`, for SSH add the app's deploy key (git:public-key APP) to the repository", url)
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return apps.Errorf(apps.ErrDeployFailed, "%s: repository not found (or private: see git:auth and git:generate-deploy-key)", url)
	case errors.Is(err, transport.ErrEmptyRemoteRepository):
		return apps.Errorf(apps.ErrDeployFailed, "%s is empty: push something to it first", url)
	}
	msg := err.Error()
	if strings.Contains(msg, "unable to authenticate") || strings.Contains(msg, "handshake failed") && strings.Contains(msg, "auth") {
		return apps.Errorf(apps.ErrDeployFailed, "%s refused the app's deploy key: add the key git:public-key APP prints to the repository", url)
	}
	return apps.Errorf(apps.ErrDeployFailed, "fetch %s: %v", url, err)
}

// auth picks the credentials of url: a git:auth login for HTTP(S) hosts,
// the app's deploy key for SSH.
func (m *Mirror) auth(ctx context.Context, app, url string) (transport.AuthMethod, error) {
	ep, err := transport.NewEndpoint(url)
	if err != nil {
		return nil, err
	}
	switch ep.Protocol {
	case "http", "https":
		if ep.Password != "" {
			return nil, nil // written into the URL by the user
		}
		hosts := []string{ep.Host}
		if ep.Port != 0 {
			hosts = []string{fmt.Sprintf("%s:%d", ep.Host, ep.Port), ep.Host}
		}
		for _, h := range hosts {
			c, ok, err := m.Store.GitCredential(ctx, strings.ToLower(h))
			if err != nil {
				return nil, err
			}
			if ok {
				return &githttp.BasicAuth{Username: c.User, Password: c.Token}, nil
			}
		}
		return nil, nil
	case "ssh":
		k, ok, err := m.Store.DeployKey(ctx, app)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, apps.Errorf(apps.ErrDeployFailed, "App %s has no deploy key for %s: run `git:generate-deploy-key %s` and add the key it prints to the repository", app, ep.Host, app)
		}
		user := ep.User
		if user == "" {
			user = "git"
		}
		pk, err := gitssh.NewPublicKeys(user, []byte(k.Private), "")
		if err != nil {
			return nil, fmt.Errorf("deploy key of %s: %w", app, err)
		}
		pk.HostKeyCallback = m.hostKeyCallback()
		return pk, nil
	}
	return nil, nil
}

// hostKeyCallback trusts a host's key on first use, records it in
// KnownHosts, and refuses a different key afterwards.
func (m *Mirror) hostKeyCallback() gossh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key gossh.PublicKey) error {
		_, _, err := m.trustHostKey(hostname, remote, key)
		return err
	}
}

// trustHostKey checks key against KnownHosts, recording it when the host
// has no key there yet (added, with the line written).
func (m *Mirror) trustHostKey(hostname string, remote net.Addr, key gossh.PublicKey) (line string, added bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.KnownHosts == "" {
		return "", false, errors.New("no known_hosts file configured")
	}
	if f, err := os.OpenFile(m.KnownHosts, os.O_CREATE|os.O_RDONLY, 0o600); err == nil {
		f.Close()
	}
	check, err := knownhosts.New(m.KnownHosts)
	if err != nil {
		return "", false, fmt.Errorf("read %s: %w", m.KnownHosts, err)
	}
	line = knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key)
	err = check(hostname, remote, key)
	var ke *knownhosts.KeyError
	if errors.As(err, &ke) && len(ke.Want) == 0 {
		f, err := os.OpenFile(m.KnownHosts, os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return "", false, err
		}
		defer f.Close()
		_, err = fmt.Fprintln(f, line)
		return line, err == nil, err
	}
	if errors.As(err, &ke) {
		return "", false, fmt.Errorf("the SSH host key of %s changed (it is not the one recorded in %s): if the server really changed its key, remove its line there", hostname, m.KnownHosts)
	}
	return line, false, err
}

// errHostChecked ends git:allow-host's handshake once the key is seen.
var errHostChecked = errors.New("host key checked")

// AllowHost connects to an SSH git host (port 22 unless host has one),
// and trusts its key now as a first git:sync would (git:allow-host). added
// is false when that key was trusted already; a different key recorded
// before is an error.
func (m *Mirror) AllowHost(ctx context.Context, host string) (line string, added bool, err error) {
	addr := host
	if _, _, err := net.SplitHostPort(host); err != nil {
		addr = net.JoinHostPort(host, "22")
	}
	dialer := net.Dialer{Timeout: 15 * time.Second}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", false, fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	} else {
		conn.SetDeadline(time.Now().Add(30 * time.Second))
	}
	var checkErr error
	cfg := &gossh.ClientConfig{User: "git", HostKeyCallback: func(hostname string, remote net.Addr, key gossh.PublicKey) error {
		line, added, checkErr = m.trustHostKey(hostname, remote, key)
		if checkErr != nil {
			return checkErr
		}
		return errHostChecked
	}}
	_, _, _, err = gossh.NewClientConn(conn, addr, cfg)
	if checkErr != nil {
		return "", false, checkErr
	}
	if !errors.Is(err, errHostChecked) {
		return "", false, fmt.Errorf("SSH handshake with %s: %w", addr, err)
	}
	return line, added, nil
}

// GenerateDeployKey makes an ed25519 key pair for app: the private key in
// OpenSSH PEM and the authorized_keys line of the public key.
func GenerateDeployKey(app string) (apps.DeployKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return apps.DeployKey{}, fmt.Errorf("generate deploy key: %w", err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "rivetr deploy key of "+app)
	if err != nil {
		return apps.DeployKey{}, fmt.Errorf("encode deploy key: %w", err)
	}
	sshPub, err := gossh.NewPublicKey(pub)
	if err != nil {
		return apps.DeployKey{}, err
	}
	line := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(sshPub))) + " rivetr-" + app
	return apps.DeployKey{App: app, Private: string(pem.EncodeToMemory(block)), Public: line, CreatedAt: time.Now().UTC()}, nil
}

// KnownHostsPath is the known_hosts file of SSH remotes in dataDir.
func KnownHostsPath(dataDir string) string { return filepath.Join(dataDir, "ssh_known_hosts") }

// RunJob is the apps.JobRunner of webhook deploys: it syncs the app's
// source branch from its source URL and deploys the fetched head, unless
// that revision is already the one serving.
func (m *Mirror) RunJob(ctx context.Context, j apps.DeployJob, onRelease func(int), out io.Writer) (string, error) {
	url, err := m.Apps.Setting(ctx, j.App, "git", apps.GitSourceURL, "")
	if err != nil {
		return "", err
	}
	if url == "" {
		return "", apps.Errorf(apps.ErrInvalidValue, "App %s has no source-url: git:set %s source-url URL", j.App, j.App)
	}
	res, err := m.Sync(ctx, j.App, url, j.Ref, out)
	if err != nil {
		return "", err
	}
	if cur, ok, err := m.Apps.Store().CurrentRelease(ctx, j.App); err == nil && ok && cur.Rev == res.Rev {
		return fmt.Sprintf("%.7s is already deployed (release %d)", res.Rev, cur.Number), nil
	}
	user := j.Trigger
	if j.User != "" {
		user += ":" + j.User
	}
	err = m.Deployer.Deploy(ctx, apps.DeployRequest{App: j.App, Rev: res.Rev, User: user, Reason: "webhook", Out: out, OnRelease: onRelease})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("deployed %.7s", res.Rev), nil
}
