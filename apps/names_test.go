package apps

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateAppName(t *testing.T) {
	good := []string{"a", "app", "my-app", "my.app", "0app", "a1-b2.c3", strings.Repeat("a", 63)}
	bad := []string{"", "App", "my_app", "a/b", "a;b", "a$b", "a|b", "a&b", "-app", ".app", "a..b", "a b",
		"a\nb", "ä", strings.Repeat("a", 64), "../etc", "a:b", "a'b", "a`b"}
	for _, n := range good {
		if err := ValidateAppName(n); err != nil {
			t.Errorf("%q refused: %v", n, err)
		}
	}
	for _, n := range bad {
		err := ValidateAppName(n)
		if !errors.Is(err, ErrInvalidName) {
			t.Errorf("%q accepted (err %v)", n, err)
		}
	}
}

func TestValidateEnv(t *testing.T) {
	for _, k := range []string{"A", "_a", "DATABASE_URL", "a1"} {
		if err := ValidateEnvKey(k); err != nil {
			t.Errorf("%q refused", k)
		}
	}
	for _, k := range []string{"", "1A", "A-B", "A B", "A=B", "Ä"} {
		if err := ValidateEnvKey(k); err == nil {
			t.Errorf("%q accepted", k)
		}
	}
	if err := ValidateEnvValue("K", "a\x00b"); err == nil {
		t.Error("NUL accepted")
	}
	if err := ValidateEnvValue("K", strings.Repeat("x", MaxEnvValue+1)); err == nil {
		t.Error("oversized value accepted")
	}
}

func TestValidateServiceAndKeyNames(t *testing.T) {
	for _, n := range []string{"db", "My_DB-1"} {
		if ValidateServiceName(n) != nil {
			t.Errorf("service %q refused", n)
		}
	}
	for _, n := range []string{"", "a.b", "a/b", "a b"} {
		if ValidateServiceName(n) == nil {
			t.Errorf("service %q accepted", n)
		}
	}
	for _, n := range []string{"admin", "me@laptop", "ci.key-1"} {
		if ValidateKeyName(n) != nil {
			t.Errorf("key %q refused", n)
		}
	}
	for _, n := range []string{"", "-x", "a b", "a;b", "a/b"} {
		if ValidateKeyName(n) == nil {
			t.Errorf("key %q accepted", n)
		}
	}
}

func TestValidHost(t *testing.T) {
	for s, want := range map[string]bool{
		"github.com": true, "ghcr.io": true, "registry.example.com:5000": true, "127.0.0.1:2222": true, "a": true,
		"": false, "GitHub.com": false, "-x.com": false, "x.com.": false, ".x": false, "x.com:": false,
		"x.com:123456": false, "x.com:8a": false, "ghcr.io/x": false, "../etc": false, "bad host;id": false,
		"a:1:2": false, strings.Repeat("a", 261): false,
	} {
		if got := ValidHost(s); got != want {
			t.Errorf("ValidHost(%q) = %v, want %v", s, got, want)
		}
	}
}
