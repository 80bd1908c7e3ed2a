// Package settings loads rivetr's configuration with spf13/viper in the
// CONTRACT's precedence: command-line flags, then RIVETR_* environment
// variables, then the TOML file (--config, $RIVETR_CONFIG, or
// /etc/rivetr/rivetr.toml when present), then defaults. Every value is
// validated, so a bad one stops the daemon with a one-line error.
package settings

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/rivetr/rivetr/apps"
)

// DefaultConfigFile is read when neither --config nor $RIVETR_CONFIG is set.
const DefaultConfigFile = "/etc/rivetr/rivetr.toml"

// Config is rivetr's configuration.
type Config struct {
	DataDir    string
	SSHAddr    string
	HTTPAddr   string
	HTTPSAddr  string // empty disables HTTPS
	APIAddr    string
	Domain     string
	Runtime    string // auto, docker, podman
	ACMEEmail  string
	ACMECA     string
	ACMECARoot string
	LogLevel   string
	LogFormat  string // auto, json, console
	// Ulimits are set on every container, "name=soft[:hard]" comma-separated;
	// empty means rivetr's defaults (nofile 65536, nproc 32768, each capped
	// to rivetr's own hard limit); "none" sets none.
	Ulimits string
	// ProxyMaxBodySize limits request bodies through the proxy ("0": no
	// limit; "10m", "1g", or bytes); ProxyMaxBody is it in bytes.
	ProxyMaxBodySize string
	ProxyMaxBody     int64
	// ProxyAccessLog logs one line per proxied request.
	ProxyAccessLog bool
	// HookTimeout bounds one run of a plugin's trigger.
	HookTimeout time.Duration
	File        string // the config file read, if any
}

// SocketPath is the daemon's control socket.
func (c Config) SocketPath() string { return filepath.Join(c.DataDir, "rivetr.sock") }

// DBPath is the SQLite state file.
func (c Config) DBPath() string { return filepath.Join(c.DataDir, "rivetr.db") }

// option is one setting: its file key (also the env suffix, upper-cased),
// flag name, default and help.
type option struct {
	key, flag, def, help string
}

var options = []option{
	{"data_dir", "data-dir", "/var/lib/rivetr", "all state: SQLite db, repos, host key, certificates, socket"},
	{"ssh_addr", "ssh-addr", ":2222", "SSH server address (git push and commands)"},
	{"http_addr", "http-addr", ":80", "reverse proxy HTTP address"},
	{"https_addr", "https-addr", ":443", "reverse proxy HTTPS address; empty disables HTTPS"},
	{"api_addr", "api-addr", ":8000", "dashboard, REST API, smart-HTTP git and webhooks address"},
	{"domain", "domain", "localhost", "global domain: app APP is served at APP.<domain>"},
	{"runtime", "runtime", "auto", "container engine: auto, docker or podman"},
	{"acme_email", "acme-email", "", "ACME account email"},
	{"acme_ca", "acme-ca", "https://acme-v02.api.letsencrypt.org/directory", "ACME directory URL"},
	{"acme_ca_root", "acme-ca-root", "", "PEM file of extra roots to trust for the ACME CA"},
	{"log_level", "log-level", "info", "log level: debug, info, warn, error"},
	{"log_format", "log-format", "auto", "log format: auto (JSON unless stderr is a terminal), json, console"},
	{"ulimits", "ulimits", "", "container ulimits, e.g. nofile=65536:65536,nproc=32768; empty: defaults; none: none"},
	{"proxy_max_body_size", "proxy-max-body-size", "0", "largest request body the proxy passes on (413 above), e.g. 10m or 1g; 0: no limit"},
	{"proxy_access_log", "proxy-access-log", "false", "log one line per proxied request (true or false)"},
	{"hook_timeout", "hook-timeout", "60s", "time limit of one run of a plugin's trigger, e.g. 30s or 5m"},
}

// Flags returns a flag set with one flag per option plus --config.
func Flags(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.String("config", "", "TOML config file (default $RIVETR_CONFIG, else "+DefaultConfigFile+" if present)")
	for _, o := range options {
		fs.String(o.flag, o.def, o.help)
	}
	return fs
}

// Load builds the configuration from fs (already parsed; may be nil), the
// RIVETR_* environment and the config file. viper's own precedence (flag >
// env > file > default) is the CONTRACT's.
func Load(fs *pflag.FlagSet) (Config, error) {
	v := viper.New()
	v.AllowEmptyEnv(true) // RIVETR_HTTPS_ADDR= disables HTTPS
	for _, o := range options {
		v.SetDefault(o.key, o.def)
		if err := v.BindEnv(o.key, "RIVETR_"+strings.ToUpper(o.key)); err != nil {
			return Config{}, err
		}
		if fs != nil {
			if f := fs.Lookup(o.flag); f != nil {
				if err := v.BindPFlag(o.key, f); err != nil {
					return Config{}, err
				}
			}
		}
	}

	file, explicit := "", false
	if fs != nil {
		if f := fs.Lookup("config"); f != nil && f.Changed {
			file, explicit = f.Value.String(), true
		}
	}
	if file == "" {
		if e := os.Getenv("RIVETR_CONFIG"); e != "" {
			file, explicit = e, true
		}
	}
	if file == "" {
		if _, err := os.Stat(DefaultConfigFile); err == nil {
			file = DefaultConfigFile
		}
	}
	if file != "" {
		v.SetConfigFile(file)
		v.SetConfigType("toml")
		if err := v.ReadInConfig(); err != nil {
			if explicit && errors.Is(err, os.ErrNotExist) {
				return Config{}, fmt.Errorf("config file %s does not exist", file)
			}
			return Config{}, fmt.Errorf("read config file %s: %s", file, oneLine(err))
		}
		if err := checkKeys(v.AllKeys(), file); err != nil {
			return Config{}, err
		}
	}
	c := Config{
		DataDir:    v.GetString("data_dir"),
		SSHAddr:    v.GetString("ssh_addr"),
		HTTPAddr:   v.GetString("http_addr"),
		HTTPSAddr:  v.GetString("https_addr"),
		APIAddr:    v.GetString("api_addr"),
		Domain:     strings.ToLower(v.GetString("domain")),
		Runtime:    v.GetString("runtime"),
		ACMEEmail:  v.GetString("acme_email"),
		ACMECA:     v.GetString("acme_ca"),
		ACMECARoot: v.GetString("acme_ca_root"),
		LogLevel:   v.GetString("log_level"),
		LogFormat:  v.GetString("log_format"),
		Ulimits:    v.GetString("ulimits"),
		File:       file,

		ProxyMaxBodySize: v.GetString("proxy_max_body_size"),
	}
	switch al := strings.ToLower(v.GetString("proxy_access_log")); al {
	case "true", "1", "yes", "on":
		c.ProxyAccessLog = true
	case "false", "0", "no", "off", "":
	default:
		return Config{}, fmt.Errorf("proxy_access_log (RIVETR_PROXY_ACCESS_LOG): invalid value %q (use true or false)", al)
	}
	n, err := apps.ParseBytes(c.ProxyMaxBodySize)
	if err != nil {
		return Config{}, fmt.Errorf("proxy_max_body_size (RIVETR_PROXY_MAX_BODY_SIZE): %v", err)
	}
	c.ProxyMaxBody = n
	ht := v.GetString("hook_timeout")
	if c.HookTimeout, err = time.ParseDuration(ht); err != nil || c.HookTimeout < time.Second || c.HookTimeout > 24*time.Hour {
		return Config{}, fmt.Errorf("hook_timeout (RIVETR_HOOK_TIMEOUT): invalid duration %q (use 1s to 24h, e.g. 60s)", ht)
	}
	if c.DataDir != "" {
		abs, err := filepath.Abs(c.DataDir)
		if err != nil {
			return Config{}, fmt.Errorf("data_dir %q: %w", c.DataDir, err)
		}
		c.DataDir = abs
	}
	return c, c.Validate()
}

func checkKeys(keys []string, file string) error {
	known := make([]string, len(options))
	for i, o := range options {
		known[i] = o.key
	}
	var unknown []string
	for _, k := range keys {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("config file %s: unknown key %q (known keys: %s)", file, unknown[0], strings.Join(known, ", "))
	}
	return nil
}

var ulimitRe = regexp.MustCompile(`^[0-9]+(:[0-9]+)?$`)

// labelRe is one DNS label; validDomain bounds its length (a counted
// repetition would compile into a large regexp).
var labelRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// validDomain accepts a lower-case DNS name of labels of 1 to 63 characters.
func validDomain(s string) bool {
	if s == "" {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if len(label) > 63 || !labelRe.MatchString(label) {
			return false
		}
	}
	return true
}

// Validate checks every value and names the first bad one.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("data_dir (RIVETR_DATA_DIR) must not be empty")
	}
	addrs := []struct{ name, val string }{
		{"ssh_addr (RIVETR_SSH_ADDR)", c.SSHAddr},
		{"http_addr (RIVETR_HTTP_ADDR)", c.HTTPAddr},
		{"api_addr (RIVETR_API_ADDR)", c.APIAddr},
		{"https_addr (RIVETR_HTTPS_ADDR)", c.HTTPSAddr},
	}
	for i, a := range addrs {
		if a.val == "" && i == 3 {
			continue // HTTPS disabled
		}
		if err := checkAddr(a.val); err != nil {
			return fmt.Errorf("%s: invalid address %q: %v", a.name, a.val, err)
		}
	}
	if len(c.Domain) > 253 || !validDomain(c.Domain) {
		return fmt.Errorf("domain (RIVETR_DOMAIN): invalid domain %q", c.Domain)
	}
	if !slices.Contains([]string{"auto", "docker", "podman"}, c.Runtime) {
		return fmt.Errorf("runtime (RIVETR_RUNTIME): invalid value %q (use auto, docker or podman)", c.Runtime)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		return fmt.Errorf("log_level (RIVETR_LOG_LEVEL): invalid value %q (use debug, info, warn or error)", c.LogLevel)
	}
	if !slices.Contains([]string{"auto", "json", "console"}, c.LogFormat) {
		return fmt.Errorf("log_format (RIVETR_LOG_FORMAT): invalid value %q (use auto, json or console)", c.LogFormat)
	}
	if c.Ulimits != "" && c.Ulimits != "none" {
		for _, u := range strings.Split(c.Ulimits, ",") {
			name, val, ok := strings.Cut(strings.TrimSpace(u), "=")
			if !ok || name == "" || !ulimitRe.MatchString(val) {
				return fmt.Errorf("ulimits (RIVETR_ULIMITS): invalid %q (want name=soft[:hard], comma-separated)", u)
			}
		}
	}
	if c.ACMECA != "" && !strings.HasPrefix(c.ACMECA, "https://") && !strings.HasPrefix(c.ACMECA, "http://") {
		return fmt.Errorf("acme_ca (RIVETR_ACME_CA): invalid URL %q", c.ACMECA)
	}
	if c.ACMEEmail != "" && !strings.Contains(c.ACMEEmail, "@") {
		return fmt.Errorf("acme_email (RIVETR_ACME_EMAIL): invalid email %q", c.ACMEEmail)
	}
	return nil
}

func checkAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want HOST:PORT or :PORT")
	}
	if host != "" && net.ParseIP(host) == nil && !validDomain(strings.ToLower(host)) {
		return fmt.Errorf("bad host %q", host)
	}
	if _, err := net.LookupPort("tcp", port); err != nil || port == "" {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
