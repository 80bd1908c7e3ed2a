package main

import (
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/rivetr/rivetr/settings"
)

// newLogger writes to stderr: JSON when stderr is not a terminal (or when
// asked), human-readable otherwise.
func newLogger(cfg settings.Config) zerolog.Logger {
	var w io.Writer = os.Stderr
	console := cfg.LogFormat == "console" ||
		(cfg.LogFormat == "auto" && isatty.IsTerminal(os.Stderr.Fd()))
	if console {
		w = zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly}
	}
	level, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil {
		level = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}
