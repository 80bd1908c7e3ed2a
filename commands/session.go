package commands

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// Session is one command invocation: its streams and who runs it.
type Session struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// User names the caller: an SSH key name, or "admin" for the local CLI.
	User string
	// Admin is true for the local CLI, which may run admin-only commands.
	Admin bool
	// Force and Quiet are the global --force and --quiet flags.
	Force bool
	Quiet bool

	// Dir is the local CLI's working directory, for relative FILE arguments.
	Dir string

	appFlag string // the global --app, put before the command's arguments
}

// Path resolves a FILE argument of an admin command against the caller's
// working directory.
func (s *Session) Path(p string) string {
	if filepath.IsAbs(p) || s.Dir == "" {
		return p
	}
	return filepath.Join(s.Dir, p)
}

// Step prints "-----> msg" unless --quiet.
func (s *Session) Step(format string, args ...any) { s.prefixed("-----> ", format, args...) }

// Header prints "=====> msg" unless --quiet.
func (s *Session) Header(format string, args ...any) { s.prefixed("=====> ", format, args...) }

// Detail prints a line indented by 7 spaces unless --quiet.
func (s *Session) Detail(format string, args ...any) { s.prefixed("       ", format, args...) }

func (s *Session) prefixed(prefix, format string, args ...any) {
	if s.Quiet {
		return
	}
	msg := fmt.Sprintf(format, args...)
	for _, line := range strings.Split(msg, "\n") {
		fmt.Fprintf(s.Stdout, "%s%s\n", prefix, line)
	}
}

// Println writes a plain line to stdout, even with --quiet: it is the
// command's result (a value, a list), not progress.
func (s *Session) Println(args ...any) { fmt.Fprintln(s.Stdout, args...) }

// Printf writes plain formatted output to stdout.
func (s *Session) Printf(format string, args ...any) { fmt.Fprintf(s.Stdout, format, args...) }

// Warn writes " !     msg" lines to stderr.
func (s *Session) Warn(format string, args ...any) {
	writeError(s.Stderr, fmt.Sprintf(format, args...))
}

func writeError(w io.Writer, msg string) {
	for _, line := range strings.Split(strings.TrimRight(msg, "\n"), "\n") {
		fmt.Fprintf(w, " !     %s\n", line)
	}
}

// ReadLine reads one line from stdin without buffering past it, for
// confirmations. It returns what was read at EOF.
func (s *Session) ReadLine(max int) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for len(b) < max {
		n, err := s.Stdin.Read(one)
		if n == 1 {
			if one[0] == '\n' {
				break
			}
			b = append(b, one[0])
		}
		if err != nil {
			if err == io.EOF {
				break
			}
			return "", err
		}
	}
	return strings.TrimRight(string(b), "\r"), nil
}
