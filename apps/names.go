package apps

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// Name rules from the CONTRACT. Every name is checked against them before it
// reaches a path, a container name or a shell.
var (
	appNameRe     = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*$`)
	envKeyRe      = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	serviceNameRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	keyNameRe     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]*$`)
	volumeRe      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`) // at most 128: see resources.go
)

// Limits on sizes, so one request cannot fill the disk or a container's env.
const (
	MaxAppName     = 63
	MaxEnvKey      = 255
	MaxEnvValue    = 64 << 10
	MaxServiceName = 63
	MaxKeyName     = 64
)

// ValidateAppName reports whether name is a valid app name.
func ValidateAppName(name string) error {
	if name == "" {
		return Errorf(ErrInvalidName, "Please specify an app to run the command on")
	}
	if len(name) > MaxAppName {
		return Errorf(ErrInvalidName, "App name %q is too long (max %d characters)", clip(name), MaxAppName)
	}
	if !appNameRe.MatchString(name) || strings.Contains(name, "..") {
		return Errorf(ErrInvalidName, "App name %q is invalid: it must begin with a lowercase letter or digit and contain only lowercase letters, digits, dots and dashes", clip(name))
	}
	return nil
}

// ValidateEnvKey reports whether key is a valid environment variable name.
func ValidateEnvKey(key string) error {
	if len(key) > MaxEnvKey || !envKeyRe.MatchString(key) {
		return Errorf(ErrInvalidKey, "Invalid env var name %q: it must match [a-zA-Z_][a-zA-Z0-9_]*", clip(key))
	}
	return nil
}

// ValidateEnvValue reports whether value can be stored and passed to a
// process environment: no NUL bytes and at most MaxEnvValue bytes.
func ValidateEnvValue(key, value string) error {
	if strings.IndexByte(value, 0) >= 0 {
		return Errorf(ErrInvalidValue, "Value of %s contains a NUL byte, which an environment cannot hold", key)
	}
	if len(value) > MaxEnvValue {
		return Errorf(ErrInvalidValue, "Value of %s is too large (%d bytes, max %d)", key, len(value), MaxEnvValue)
	}
	return nil
}

// ValidateServiceName reports whether name is a valid service name.
func ValidateServiceName(name string) error {
	if len(name) == 0 || len(name) > MaxServiceName || !serviceNameRe.MatchString(name) {
		return Errorf(ErrInvalidName, "Service name %q is invalid: it must match [A-Za-z0-9_-]+ (max %d characters)", clip(name), MaxServiceName)
	}
	return nil
}

// ValidateKeyName reports whether name is a valid SSH key name.
func ValidateKeyName(name string) error {
	if len(name) == 0 || len(name) > MaxKeyName || !keyNameRe.MatchString(name) {
		return Errorf(ErrInvalidName, "SSH key name %q is invalid: it must start with a letter or digit and contain only letters, digits, '_', '.', '@' and '-'", clip(name))
	}
	return nil
}

// clip shortens a bad name for an error message and keeps it printable.
func clip(s string) string {
	const max = 80
	if len(s) > max {
		s = s[:max]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "..."
	}
	return s
}

var pluginNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// ValidPluginName reports whether name may name a plugin or a hook point:
// ^[a-z0-9][a-z0-9_-]*$, at most 64 characters.
func ValidPluginName(name string) bool {
	return len(name) <= 64 && pluginNameRE.MatchString(name)
}

// ValidateGitRef accepts a branch, tag, full ref name or commit hash that
// can reach git safely: no leading "-", no "..", none of git's forbidden
// characters, no trailing "/" or ".lock", at most 250 bytes.
func ValidateGitRef(ref string) error {
	if ref == "" || len(ref) > 250 || strings.HasPrefix(ref, "-") || strings.Contains(ref, "..") ||
		strings.ContainsAny(ref, " ~^:?*[\\\x00\t\n") || strings.HasSuffix(ref, "/") || strings.HasSuffix(ref, ".lock") {
		return Errorf(ErrInvalidValue, "%q is not a valid git ref", ref)
	}
	return nil
}

// ValidHost reports whether s is a lower-case host name or IPv4 address,
// optionally with a port: what git:auth, git:allow-host and registry:login
// take. Letters, digits, dots and dashes, starting and ending with a
// letter or digit.
func ValidHost(s string) bool {
	host, port, hasPort := strings.Cut(s, ":")
	if host == "" || len(s) > 260 || (hasPort && (port == "" || len(port) > 5)) {
		return false
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	if !alnum(host[0]) || !alnum(host[len(host)-1]) {
		return false
	}
	for i := 0; i < len(host); i++ {
		if c := host[i]; !alnum(c) && c != '.' && c != '-' {
			return false
		}
	}
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return false
		}
	}
	return true
}
