package apps

import (
	"errors"
	"fmt"
)

// Sentinel errors of the core. Adapters wrap them; commands/ maps them to
// exit codes and Dokku's messages in one place.
var (
	ErrAppNotFound    = errors.New("app not found")
	ErrAppExists      = errors.New("app already exists")
	ErrInvalidName    = errors.New("invalid name")
	ErrInvalidKey     = errors.New("invalid config key")
	ErrInvalidValue   = errors.New("invalid value")
	ErrKeyNotFound    = errors.New("ssh key not found")
	ErrKeyExists      = errors.New("ssh key already exists")
	ErrKeyNameTaken   = errors.New("ssh key name already taken")
	ErrAppLocked      = errors.New("app is locked")
	ErrUnknownSetting = errors.New("unknown setting")
	ErrTokenNotFound  = errors.New("token not found")
	ErrTokenExists    = errors.New("token already exists")
	ErrDeployFailed   = errors.New("deploy failed")
	ErrNoRelease      = errors.New("app has no release")
	ErrNoCertificate  = errors.New("no certificate")
	ErrBadCertificate = errors.New("invalid certificate")
	ErrJobNotFound    = errors.New("deploy job not found")
	ErrJobFinished    = errors.New("deploy job already finished")
)

// Error is an error with a message meant for the user and a sentinel kind
// that errors.Is can match, e.g. Errorf(ErrAppNotFound, "App %s does not exist", name).
type Error struct {
	Msg  string
	Kind error
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Kind }

// Errorf returns an *Error of the given kind with a formatted user message.
func Errorf(kind error, format string, args ...any) error {
	return &Error{Msg: fmt.Sprintf(format, args...), Kind: kind}
}

// NotFound is the error for a missing app, worded as Dokku words it.
func NotFound(name string) error {
	return Errorf(ErrAppNotFound, "App %s does not exist", name)
}
