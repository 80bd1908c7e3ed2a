package commands

import (
	"errors"
	"fmt"

	"github.com/rivetr/rivetr/apps"
)

// Exit codes, following Dokku.
const (
	ExitOK         = 0
	ExitFailure    = 1
	ExitAppMissing = 20
)

// ExitError ends a command with a code and an optional message.
type ExitError struct {
	Code int
	Msg  string // empty: exit silently
}

func (e *ExitError) Error() string {
	if e.Msg == "" {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Msg
}

// Exit returns an error that ends the command with code and no message.
func Exit(code int) error { return &ExitError{Code: code} }

// Failf returns an error that ends the command with exit 1 and a message.
func Failf(format string, args ...any) error {
	return &ExitError{Code: ExitFailure, Msg: fmt.Sprintf(format, args...)}
}

// usageError reports a wrong call of cmd.
func usageError(cmd *Command) error {
	return Failf("Usage: rivetr %s", cmd.Usage)
}

// exitCode maps an error to the exit code and the message the user sees.
// Internal errors keep their wrapped context, which names what failed.
func exitCode(err error) (int, string) {
	var ee *ExitError
	switch {
	case err == nil:
		return ExitOK, ""
	case errors.As(err, &ee):
		return ee.Code, ee.Msg
	case errors.Is(err, apps.ErrAppNotFound):
		return ExitAppMissing, err.Error()
	}
	return ExitFailure, err.Error()
}
