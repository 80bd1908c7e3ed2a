package apps

import (
	"context"
	"io"
)

// HookOpts are the streams and extra environment of one hook run.
type HookOpts struct {
	Stdin io.Reader
	Out   io.Writer // user-facing: a hook's stderr is shown here
	Env   map[string]string
}

// Hooks runs the handlers registered on a named hook point (Dokku's
// trigger names: post-extract, pre-build, ...): in-process Go hooks and
// plugins' executables. It returns their stdout, joined; an error from a
// pre-hook aborts the step.
type Hooks interface {
	Run(ctx context.Context, point string, args []string, opts HookOpts) (string, error)
}

// NoHooks runs nothing; for tests and wiring without plugins.
type NoHooks struct{}

// Run returns nothing.
func (NoHooks) Run(context.Context, string, []string, HookOpts) (string, error) { return "", nil }
