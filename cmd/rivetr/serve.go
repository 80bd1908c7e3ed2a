package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/rivetr/rivetr/apps"
	"github.com/rivetr/rivetr/commands"
	"github.com/rivetr/rivetr/control"
	"github.com/rivetr/rivetr/gitserver"
	"github.com/rivetr/rivetr/settings"
	"github.com/rivetr/rivetr/store"
)

// shutdownGrace is how long running commands get to finish on SIGTERM.
const shutdownGrace = 10 * time.Second

// serve runs the daemon in the foreground until SIGTERM or SIGINT.
func serve(args []string) int {
	fs := settings.Flags("rivetr serve")
	fs.SetOutput(os.Stderr)
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "Usage: rivetr serve [flags]\n\nFlags (each also RIVETR_<NAME> in the environment or <name> in the TOML file):")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 1
	}
	if fs.NArg() > 0 {
		return fail("serve takes no arguments, got %q", fs.Arg(0))
	}
	cfg, err := settings.Load(fs)
	if err != nil {
		return fail("%v", err)
	}
	log := newLogger(cfg)
	if err := runDaemon(cfg, log); err != nil {
		log.Error().Err(err).Msg("rivetr stopped")
		return fail("%v", err)
	}
	return 0
}

func runDaemon(cfg settings.Config, log zerolog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	db, err := store.Open(ctx, cfg.DBPath())
	if err != nil {
		return err
	}
	defer db.Close()
	svc := apps.NewService(db)

	reg := commands.NewRegistry()
	commands.RegisterCore(reg, commands.Deps{Apps: svc, Version: version, DataDir: cfg.DataDir})

	hostKey, err := gitserver.LoadOrCreateHostKey(filepath.Join(cfg.DataDir, "ssh_host_ed25519_key"))
	if err != nil {
		return err
	}
	sshLog := log.With().Str("component", "ssh").Logger()
	sshSrv, err := gitserver.NewSSH(cfg.SSHAddr, hostKey, db, func(ctx context.Context, c gitserver.Call) int {
		return reg.Run(ctx, &commands.Session{Stdin: c.Stdin, Stdout: c.Stdout, Stderr: c.Stderr, User: c.User}, c.Args)
	}, sshLog)
	if err != nil {
		return err
	}
	ctlLog := log.With().Str("component", "control").Logger()
	ctl, err := control.Listen(cfg.SocketPath(), func(ctx context.Context, req control.Request, st control.Streams) int {
		return reg.Run(ctx, &commands.Session{Stdin: st.Stdin, Stdout: st.Stdout, Stderr: st.Stderr, User: "admin", Admin: true}, req.Args)
	}, ctlLog)
	if err != nil {
		sshSrv.Shutdown(context.Background())
		return err
	}

	errc := make(chan error, 2)
	go func() { errc <- sshSrv.Serve() }()
	go func() { errc <- ctl.Serve() }()
	log.Info().Str("version", version).Str("data_dir", cfg.DataDir).
		Str("ssh", sshSrv.Addr().String()).Str("socket", cfg.SocketPath()).
		Str("domain", cfg.Domain).Msg("rivetr started")

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info().Msg("shutting down")
	case serveErr = <-errc:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	sshSrv.Shutdown(shutdownCtx)
	ctl.Close(shutdownCtx)
	if serveErr != nil {
		return serveErr
	}
	log.Info().Msg("rivetr stopped")
	return nil
}
