package main

import (
	"os"

	"github.com/rivetr/rivetr/control"
	"github.com/rivetr/rivetr/settings"
)

// hook runs as a repository's pre-receive hook (`rivetr hook pre-receive`):
// it hands the ref lines on stdin and git's environment to the daemon and
// relays the deploy's output, so git shows it as `remote:` lines and the
// push fails when the deploy does.
func hook(args []string) int {
	if len(args) != 1 || args[0] != "pre-receive" {
		return fail("usage: rivetr hook pre-receive (run by git, not by hand)")
	}
	cfg, err := settings.Load(nil)
	if err != nil {
		return fail("%v", err)
	}
	pwd, _ := os.Getwd()
	env := map[string]string{"PWD": pwd}
	for _, k := range []string{"GIT_DIR", "GIT_QUARANTINE_PATH", "RIVETR_PUSHER"} {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	code, err := control.CallEnv(cfg.SocketPath(), control.Request{Args: []string{"hook", "pre-receive"}, Env: env},
		control.Streams{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	if err != nil {
		return fail("%v", err)
	}
	return code
}
