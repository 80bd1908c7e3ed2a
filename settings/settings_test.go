package settings

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rivetr/rivetr/apps"
)

func clearEnv(t *testing.T) {
	t.Helper()
	for _, o := range options {
		t.Setenv("RIVETR_"+strings.ToUpper(o.key), "")
		os.Unsetenv("RIVETR_" + strings.ToUpper(o.key))
	}
	t.Setenv("RIVETR_CONFIG", "")
	os.Unsetenv("RIVETR_CONFIG")
}

func TestDefaults(t *testing.T) {
	clearEnv(t)
	c, err := Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/var/lib/rivetr" || c.SSHAddr != ":2222" || c.HTTPAddr != ":80" ||
		c.HTTPSAddr != ":443" || c.APIAddr != ":8000" || c.Domain != "localhost" || c.Runtime != "auto" {
		t.Errorf("defaults: %+v", c)
	}
	if c.SocketPath() != "/var/lib/rivetr/rivetr.sock" || c.DBPath() != "/var/lib/rivetr/rivetr.db" {
		t.Errorf("paths: %s %s", c.SocketPath(), c.DBPath())
	}
}

// TestPrecedence: flag > environment > file > default.
func TestPrecedence(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "rivetr.toml")
	os.WriteFile(file, []byte("domain = \"file.test\"\nssh_addr = \":3001\"\nhttp_addr = \":3002\"\nruntime = \"podman\"\n"), 0o600)
	t.Setenv("RIVETR_SSH_ADDR", ":4001")
	t.Setenv("RIVETR_HTTP_ADDR", ":4002")
	fs := Flags("test")
	if err := fs.Parse([]string{"--config", file, "--http-addr", ":5002"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(fs)
	if err != nil {
		t.Fatal(err)
	}
	if c.Domain != "file.test" || c.SSHAddr != ":4001" || c.HTTPAddr != ":5002" || c.Runtime != "podman" || c.APIAddr != ":8000" {
		t.Errorf("precedence wrong: %+v", c)
	}
	if c.File != file {
		t.Errorf("file = %q", c.File)
	}
}

func TestConfigFromEnvVar(t *testing.T) {
	clearEnv(t)
	file := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(file, []byte("data_dir = \"/srv/rivetr\"\n"), 0o600)
	t.Setenv("RIVETR_CONFIG", file)
	c, err := Load(nil)
	if err != nil || c.DataDir != "/srv/rivetr" {
		t.Fatalf("%+v %v", c, err)
	}
}

func TestEmptyHTTPSDisables(t *testing.T) {
	clearEnv(t)
	t.Setenv("RIVETR_HTTPS_ADDR", "")
	c, err := Load(nil)
	if err != nil || c.HTTPSAddr != "" {
		t.Fatalf("https %q, %v", c.HTTPSAddr, err)
	}
}

func TestRelativeDataDirMadeAbsolute(t *testing.T) {
	clearEnv(t)
	t.Setenv("RIVETR_DATA_DIR", "./.rivetr")
	c, err := Load(nil)
	if err != nil || !filepath.IsAbs(c.DataDir) {
		t.Fatalf("%q %v", c.DataDir, err)
	}
}

func TestBadValues(t *testing.T) {
	cases := map[string]string{
		"RIVETR_SSH_ADDR":   "notanaddress",
		"RIVETR_HTTP_ADDR":  ":99999",
		"RIVETR_API_ADDR":   "",
		"RIVETR_DOMAIN":     "bad_domain!",
		"RIVETR_RUNTIME":    "lxc",
		"RIVETR_DATA_DIR":   "",
		"RIVETR_LOG_LEVEL":  "loud",
		"RIVETR_ACME_CA":    "ftp://x",
		"RIVETR_ACME_EMAIL": "nobody",
		"RIVETR_ULIMITS":    "nofile=lots",

		"RIVETR_PROXY_MAX_BODY_SIZE": "10x",
		"RIVETR_PROXY_ACCESS_LOG":    "maybe",
		"RIVETR_HOOK_TIMEOUT":        "forever",
	}
	for k, v := range cases {
		t.Run(k, func(t *testing.T) {
			clearEnv(t)
			t.Setenv(k, v)
			_, err := Load(nil)
			if err == nil {
				t.Fatalf("%s=%q accepted", k, v)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestBadFile(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	for name, body := range map[string]string{
		"syntax.toml":  "domain = \n",
		"unknown.toml": "colour = \"blue\"\n",
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		fs := Flags("t")
		fs.Parse([]string{"--config", p})
		if _, err := Load(fs); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	fs := Flags("t")
	fs.Parse([]string{"--config", filepath.Join(dir, "missing.toml")})
	if _, err := Load(fs); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing file: %v", err)
	}
}

func TestProxySettings(t *testing.T) {
	clearEnv(t)
	t.Setenv("RIVETR_PROXY_MAX_BODY_SIZE", "10m")
	t.Setenv("RIVETR_PROXY_ACCESS_LOG", "true")
	c, err := Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.HookTimeout != 60*time.Second {
		t.Errorf("hook timeout %v, want the 60s default", c.HookTimeout)
	}
	if c.ProxyMaxBody != 10<<20 || !c.ProxyAccessLog {
		t.Errorf("max body %d, access log %v", c.ProxyMaxBody, c.ProxyAccessLog)
	}
	for in, want := range map[string]int64{"0": 0, "512": 512, "4k": 4096, "1G": 1 << 30} {
		if n, err := apps.ParseBytes(in); err != nil || n != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, n, err, want)
		}
	}
}

func TestValidDomain(t *testing.T) {
	for _, d := range []string{"localhost", "example.com", "a.b-c.d", strings.Repeat("a", 63) + ".io"} {
		if !validDomain(d) {
			t.Errorf("%q refused", d)
		}
	}
	for _, d := range []string{"", "a..b", ".a", "a.", "-a.com", "a-.com", "A.com", "a_b.com", strings.Repeat("a", 64) + ".io"} {
		if validDomain(d) {
			t.Errorf("%q accepted", d)
		}
	}
}
