package main

import (
	"context"
	"errors"
	"os"

	"github.com/rivetr/rivetr/commands"
	"github.com/rivetr/rivetr/control"
	"github.com/rivetr/rivetr/settings"
)

// client runs `rivetr CMD ARGS...` through the daemon. Only the config file
// and environment are read (a leading --config PATH is accepted), so every
// other flag belongs to the command.
func client(args []string) int {
	fs := settings.Flags("rivetr")
	if len(args) >= 2 && args[0] == "--config" {
		if err := fs.Parse(args[:2]); err != nil {
			return fail("%v", err)
		}
		args = args[2:]
	}
	cfg, err := settings.Load(fs)
	if err != nil {
		return fail("%v", err)
	}
	wd, _ := os.Getwd()
	code, err := control.CallEnv(cfg.SocketPath(), control.Request{Args: args, Dir: wd},
		control.Streams{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	if errors.Is(err, control.ErrNotRunning) && isHelp(args) {
		// Help needs no daemon: list the commands from a bare registry.
		r := commands.NewRegistry()
		commands.RegisterCore(r, commands.Deps{Version: version})
		return r.Run(context.Background(), &commands.Session{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Admin: true}, args)
	}
	if err != nil {
		return fail("%v", err)
	}
	return code
}

func isHelp(args []string) bool {
	return len(args) == 0 || args[0] == "help" || args[0] == "--help" || args[0] == "-h"
}
