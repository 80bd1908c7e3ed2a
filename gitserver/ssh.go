package gitserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"time"

	"github.com/gliderlabs/ssh"
	"github.com/rs/zerolog"
	gossh "golang.org/x/crypto/ssh"

	"github.com/rivetr/rivetr/apps"
)

// Call is one exec request as the command language sees it.
type Call struct {
	User   string // the authenticated key's name
	Args   []string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Runner runs a command and returns its exit status.
type Runner func(ctx context.Context, c Call) int

// KeyFinder finds an authorised key by fingerprint.
type KeyFinder interface {
	SSHKeyByFingerprint(ctx context.Context, fingerprint string) (apps.SSHKey, error)
}

// SSHServer serves commands (and, later, git) over SSH.
type SSHServer struct {
	// Git serves git-receive-pack and git-upload-pack; nil refuses them.
	Git *Access

	srv  *ssh.Server
	ln   net.Listener
	keys KeyFinder
	run  Runner
	log  zerolog.Logger
}

type ctxKey struct{}

// NewSSH serves on ln, which the caller opened early so that a busy port is
// reported before anything else happens.
func NewSSH(ln net.Listener, hostKey gossh.Signer, keys KeyFinder, run Runner, log zerolog.Logger) *SSHServer {
	s := &SSHServer{ln: quickAckListener{ln}, keys: keys, run: run, log: log}
	s.srv = &ssh.Server{
		Handler:          s.handle,
		PublicKeyHandler: s.authorize,
		// Password and keyboard-interactive are off: no handlers set.
		MaxTimeout: 0,
	}
	s.srv.AddHostKey(hostKey)
	return s
}

// Addr is the address the server listens on.
func (s *SSHServer) Addr() net.Addr { return s.ln.Addr() }

// Serve serves until Shutdown.
func (s *SSHServer) Serve() error {
	err := s.srv.Serve(s.ln)
	if errors.Is(err, ssh.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting and waits for sessions until ctx ends, then
// closes the remaining ones.
func (s *SSHServer) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return s.srv.Close()
	}
	return err
}

func (s *SSHServer) authorize(ctx ssh.Context, key ssh.PublicKey) bool {
	fp := gossh.FingerprintSHA256(key)
	lookup, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	k, err := s.keys.SSHKeyByFingerprint(lookup, fp)
	if err != nil {
		if !errors.Is(err, apps.ErrKeyNotFound) {
			s.log.Error().Err(err).Msg("key lookup failed")
		}
		s.log.Info().Str("remote", ctx.RemoteAddr().String()).Str("fingerprint", fp).Msg("ssh key refused")
		return false
	}
	stored, _, _, _, err := gossh.ParseAuthorizedKey([]byte(k.PublicKey))
	if err != nil || !bytes.Equal(stored.Marshal(), key.Marshal()) {
		return false
	}
	ctx.SetValue(ctxKey{}, k.Name)
	return true
}

func (s *SSHServer) handle(sess ssh.Session) {
	user, _ := sess.Context().Value(ctxKey{}).(string)
	args := sess.Command()
	start := time.Now()
	if len(args) > 0 && (args[0] == "git-receive-pack" || args[0] == "git-upload-pack") {
		code := s.git(sess, user, args)
		s.log.Info().Str("user", user).Str("command", args[0]).Int("exit", code).
			Dur("took", time.Since(start)).Msg("ssh git")
		sess.Exit(code)
		return
	}
	code := s.run(sess.Context(), Call{
		User:   user,
		Args:   args,
		Stdin:  sess,
		Stdout: sess,
		Stderr: sess.Stderr(),
	})
	name := ""
	if len(args) > 0 {
		name = args[0] // never the arguments: they may hold secrets
	}
	s.log.Info().Str("user", user).Str("command", name).Int("exit", code).
		Dur("took", time.Since(start)).Msg("ssh command")
	sess.Exit(code)
}

// git runs the real git-receive-pack or git-upload-pack on the app's
// repository, wired to the session, and returns its exit status.
func (s *SSHServer) git(sess ssh.Session, user string, args []string) int {
	fail := func(err error) int {
		fmt.Fprintf(sess.Stderr(), " !     %v\n", err)
		return 1
	}
	if s.Git == nil {
		return fail(fmt.Errorf("%s is not enabled on this server", args[0]))
	}
	if len(args) != 2 {
		return fail(fmt.Errorf("Usage: %s '<app>.git'", args[0]))
	}
	app, err := ParsePath(args[1])
	if err != nil {
		return fail(err)
	}
	ctx := sess.Context()
	var path string
	if args[0] == "git-receive-pack" {
		path, err = s.Git.ForPush(ctx, app, sess.Stderr())
	} else {
		path, err = s.Git.ForFetch(ctx, app)
	}
	if err != nil {
		if errors.Is(err, apps.ErrAppNotFound) {
			fmt.Fprintf(sess.Stderr(), " !     %v\n", err)
			return 20
		}
		return fail(err)
	}
	cmd := exec.CommandContext(ctx, s.Git.GitPath, strings.TrimPrefix(args[0], "git-"), path)
	cmd.Env = s.Git.Env(user)
	cmd.Stdin = sess
	cmd.Stdout = sess
	cmd.Stderr = sess.Stderr()
	// git has exited once Wait returns; don't wait for a client that keeps
	// its side of stdin open.
	cmd.WaitDelay = 2 * time.Second
	return exitStatus(cmd.Run())
}
