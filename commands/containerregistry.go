package commands

import (
	"bufio"
	"context"
	"strings"
	"time"

	"github.com/rivetr/rivetr/apps"
)

// RegistryDeps are what the registry namespace needs: where logins live
// and how the engine checks one.
type RegistryDeps struct {
	Store apps.RegistryStore
	// Check logs in to the registry through the container engine
	// (runtime.Engine.CheckRegistryLogin); nil when no engine answers, and
	// then registry:login refuses, since it cannot check.
	Check func(ctx context.Context, l apps.RegistryLogin) error
}

func registerRegistry(r *Registry, d Deps) {
	st := d.Registries.Store
	if st == nil {
		return
	}
	ns := r.Namespace("registry", "Log in to container registries that builds pull private base images from")
	r.Add(ns,
		Command{Name: "registry:login", Usage: "registry:login [--password-stdin] <server> <username> [<password>]",
			Help: "Check a registry login with the engine and keep it for builds (FROM, git:from-image)",
			Run: func(ctx context.Context, s *Session, args []string) error {
				var fromStdin bool
				args, err := NewFlags().Bool(&fromStdin, "password-stdin").Parse(args)
				if err != nil {
					return Failf("%v", err)
				}
				if (fromStdin && len(args) != 2) || (!fromStdin && len(args) != 3) {
					return Failf("Usage: rivetr registry:login [--password-stdin] <server> <username> [<password>]")
				}
				server, user := strings.ToLower(args[0]), args[1]
				if err := apps.ValidateRegistryServer(server); err != nil {
					return err
				}
				var password string
				if fromStdin {
					line, err := bufio.NewReader(s.Stdin).ReadString('\n')
					if err != nil && line == "" {
						return Failf("--password-stdin: no password on stdin")
					}
					password = strings.TrimRight(line, "\r\n")
				} else {
					password = args[2]
				}
				if user == "" || password == "" || len(user) > 256 || len(password) > 4096 || strings.ContainsAny(user, " \t\r\n\x00") || strings.ContainsAny(password, "\r\n\x00") {
					return Failf("Invalid username or password")
				}
				l := apps.RegistryLogin{Server: server, Username: user, Password: password, CreatedAt: time.Now().UTC()}
				if d.Registries.Check == nil {
					return Failf("No container engine answers, so the login to %s cannot be checked: start the engine (make engine) and try again", server)
				}
				if err := d.Registries.Check(ctx, l); err != nil {
					return Failf("Login to %s refused: %v", server, err)
				}
				if err := st.SetRegistryLogin(ctx, l); err != nil {
					return err
				}
				s.Step("Login succeeded: builds pull from %s as %s", server, user)
				return nil
			}},
		Command{Name: "registry:logout", Usage: "registry:logout <server>", Help: "Forget a registry login",
			Run: func(ctx context.Context, s *Session, args []string) error {
				if len(args) != 1 {
					return Failf("Usage: rivetr registry:logout <server>")
				}
				server := strings.ToLower(args[0])
				if err := apps.ValidateRegistryServer(server); err != nil {
					return err
				}
				logins, err := st.RegistryLogins(ctx)
				if err != nil {
					return err
				}
				for _, l := range logins {
					if l.Server == server {
						if err := st.SetRegistryLogin(ctx, apps.RegistryLogin{Server: server}); err != nil {
							return err
						}
						s.Step("Logged out of %s", server)
						return nil
					}
				}
				return Failf("No login for %s (registry:report lists them)", server)
			}},
		Command{Name: "registry:report", Usage: "registry:report [--format json]", Help: "List the registry logins (never their passwords)",
			Run: func(ctx context.Context, s *Session, args []string) error {
				var format string
				args, err := NewFlags().String(&format, "format").Parse(args)
				if err != nil || len(args) > 0 || (format != "" && format != "json") {
					return Failf("Usage: rivetr registry:report [--format json]")
				}
				logins, err := st.RegistryLogins(ctx)
				if err != nil {
					return err
				}
				if format == "json" {
					type item struct {
						Server    string `json:"server"`
						Username  string `json:"username"`
						CreatedAt int64  `json:"created_at"`
					}
					out := make([]item, len(logins))
					for i, l := range logins {
						out[i] = item{l.Server, l.Username, l.CreatedAt.Unix()}
					}
					return printJSON(s, out)
				}
				s.Header("Registry logins")
				if len(logins) == 0 {
					s.Println("No registry logins: registry:login <server> <username> <password> adds one")
					return nil
				}
				for _, l := range logins {
					s.Printf("%-32s %-20s %s\n", l.Server, l.Username, l.CreatedAt.Local().Format("2006-01-02 15:04"))
				}
				return nil
			}},
	)
}
