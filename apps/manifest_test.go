package apps

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestParseProcfile(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		types   []string
		cmds    map[string]string
		release string
	}{
		{
			name:  "one type",
			in:    "web: ./server --port $PORT\n",
			types: []string{"web"},
			cmds:  map[string]string{"web": "./server --port $PORT"},
		},
		{
			name: "order kept, comments and blanks skipped, colons in commands",
			in: "# processes\n\n// also a comment\nworker:  bundle exec sidekiq\r\n" +
				"web: python -m http.server --bind 0.0.0.0:$PORT\n  release: ./migrate  \nclock_2-x:clockwork",
			types:   []string{"worker", "web", "release", "clock_2-x"},
			cmds:    map[string]string{"worker": "bundle exec sidekiq", "web": "python -m http.server --bind 0.0.0.0:$PORT", "release": "./migrate", "clock_2-x": "clockwork"},
			release: "./migrate",
		},
		{
			name:  "byte order mark and trailing comment left to the shell",
			in:    "\ufeffweb: node index.js # the server",
			types: []string{"web"},
			cmds:  map[string]string{"web": "node index.js # the server"},
		},
		{
			name:  "63-character type",
			in:    strings.Repeat("a", 63) + ": x",
			types: []string{strings.Repeat("a", 63)},
			cmds:  map[string]string{strings.Repeat("a", 63): "x"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseProcfile([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.Types, tt.types) || !reflect.DeepEqual(p.Commands, tt.cmds) {
				t.Errorf("got %q %q, want %q %q", p.Types, p.Commands, tt.types, tt.cmds)
			}
			if p.Release() != tt.release {
				t.Errorf("Release() = %q, want %q", p.Release(), tt.release)
			}
		})
	}
}

func TestParseProcfileErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"no colon", "web ./server", `line 1: expected "<type>: <command>"`},
		{"empty type", ": ./server", "line 1: expected"},
		{"space in type", "we b: x", `line 1: Invalid process type "we b"`},
		{"dot in type", "web.1: x", "Invalid process type"},
		{"type too long", strings.Repeat("a", 64) + ": x", "max 63"},
		{"duplicate", "web: a\nworker: b\nweb: c", `line 3: process type "web" is declared twice`},
		{"no command", "web: a\nworker:   ", `line 2: process type "worker" has no command`},
		{"nothing declared", "# only a comment\n\n", "no process types"},
		{"empty", "", "no process types"},
		{"too large", "web: " + strings.Repeat("x", MaxProcfileSize), "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseProcfile([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestParseAppJSON(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "app.json"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := ParseAppJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	if a.Scripts.Dokku.Predeploy != "./manage.py migrate" || a.Scripts.Dokku.Postdeploy != "curl -fsS https://example.com/deployed" || a.Scripts.Postdeploy != "./seed" {
		t.Errorf("scripts %+v", a.Scripts)
	}
	if q := a.Formation["web"].Quantity; q == nil || *q != 2 {
		t.Errorf("web quantity %v", q)
	}
	if q := a.Formation["worker"].Quantity; q == nil || *q != 0 {
		t.Errorf("worker quantity %v", q)
	}
	if m := a.Formation["web"].MaxParallel; m == nil || *m != 1 {
		t.Errorf("web max_parallel %v", m)
	}
	if a.Formation["clock"].Quantity != nil {
		t.Errorf("clock has no quantity, got %v", *a.Formation["clock"].Quantity)
	}
	wantWeb := []Healthcheck{
		{Type: "startup", Name: "web check", Path: "/health/ready", Attempts: 3, Timeout: 2, Wait: 1, InitialDelay: 4, Content: "ok", Port: 8080,
			HTTPHeaders: []HTTPHeader{{Name: "X-Forwarded-Proto", Value: "https"}}},
		{Type: "liveness", Path: "/live"},
	}
	if !reflect.DeepEqual(a.Healthchecks["web"], wantWeb) {
		t.Errorf("web healthchecks\n got %+v\nwant %+v", a.Healthchecks["web"], wantWeb)
	}
	wantWorker := []Healthcheck{{Name: "worker uptime", Uptime: 10}, {Command: []string{"/app/check.sh", "--quick"}}, {Listening: true, Port: 9000, Warn: true}}
	if !reflect.DeepEqual(a.Healthchecks["worker"], wantWorker) {
		t.Errorf("worker healthchecks\n got %+v\nwant %+v", a.Healthchecks["worker"], wantWorker)
	}
	wantEnv := map[string]EnvVar{
		"PLAIN":           {Value: "hello"},
		"WEB_CONCURRENCY": {Value: "5", Description: "processes"},
		"NUMBER":          {Value: "3"},
		"FLAG":            {Value: "true"},
		"SECRET_KEY":      {Generator: "secret", Description: "signs cookies"},
		"API_TOKEN":       {Required: true, Description: "from the provider"},
		"OPTIONAL":        {Description: "may stay unset"},
	}
	if !reflect.DeepEqual(a.Env, wantEnv) {
		t.Errorf("env\n got %+v\nwant %+v", a.Env, wantEnv)
	}
}

func TestParseAppJSONEmpty(t *testing.T) {
	for _, in := range []string{"", "  \n", "{}", `{"name": "x", "cron": [], "buildpacks": [{"url": "heroku/go"}]}`} {
		a, err := ParseAppJSON([]byte(in))
		if err != nil || a == nil || a.Formation != nil || a.Healthchecks != nil || a.Env != nil || a.Scripts != (AppScripts{}) {
			t.Errorf("ParseAppJSON(%q) = %+v, %v", in, a, err)
		}
	}
}

func TestParseAppJSONErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"syntax", "{\n  \"formation\": {\n    \"web\": {\"quantity\": 1,}\n  }\n}", "invalid JSON at line 3, column 27"},
		{"not an object", `["web"]`, "must be a JSON object"},
		{"trailing data", `{} {}`, "invalid JSON at line 1"},
		{"attempts as string", `{"healthchecks": {"web": [{"path": "/", "attempts": "3"}]}}`, "healthchecks.attempts must be an integer, not string"},
		{"healthchecks not a list", `{"healthchecks": {"web": {"path": "/"}}}`, "must be a list, not object"},
		{"predeploy as list", `{"scripts": {"dokku": {"predeploy": ["a"]}}}`, "scripts.dokku.predeploy must be a string, not array"},
		{"quantity as string", `{"formation": {"web": {"quantity": "2"}}}`, "formation.quantity must be an integer"},
		{"bad process type", `{"formation": {"web 1": {"quantity": 1}}}`, `formation: Invalid process type "web 1"`},
		{"negative quantity", `{"formation": {"web": {"quantity": -1}}}`, "formation.web.quantity must be from 0 to 100, got -1"},
		{"huge quantity", `{"formation": {"web": {"quantity": 5000}}}`, "from 0 to 100"},
		{"release formation", `{"formation": {"release": {"quantity": 1}}}`, "formation.release"},
		{"zero max_parallel", `{"formation": {"web": {"max_parallel": 0}}}`, "max_parallel must be at least 1"},
		{"healthcheck path and uptime", `{"healthchecks": {"web": [{"name": "x", "path": "/", "uptime": 5}]}}`, "healthchecks.web[0]: name=\"x\" sets path and uptime"},
		{"healthcheck bad type", `{"healthchecks": {"web": [{}, {"type": "boot"}]}}`, `healthchecks.web[1]: type must be`},
		{"healthcheck relative path", `{"healthchecks": {"web": [{"path": "health"}]}}`, "path must start with a single '/'"},
		{"healthcheck negative wait", `{"healthchecks": {"web": [{"path": "/", "wait": -1}]}}`, "wait must be from 0"},
		{"healthcheck content without path", `{"healthchecks": {"web": [{"content": "ok"}]}}`, "content is only checked by a path check"},
		{"healthcheck bad scheme", `{"healthchecks": {"web": [{"path": "/", "scheme": "ftp"}]}}`, "scheme must be http or https"},
		{"healthcheck bad header", `{"healthchecks": {"web": [{"path": "/", "httpHeaders": [{"name": "X-A", "value": "a\r\nb"}]}]}}`, "invalid httpHeaders entry"},
		{"healthcheck bad port", `{"healthchecks": {"web": [{"listening": true, "port": 70000}]}}`, "port must be from 1 to 65535"},
		{"healthcheck process type", `{"healthchecks": {"we/b": []}}`, `healthchecks: Invalid process type "we/b"`},
		{"env bad key", `{"env": {"1BAD": "x"}}`, `env: Invalid env var name "1BAD"`},
		{"env list value", `{"env": {"A": ["x"]}}`, "env.A: must be a string or an object"},
		{"env null", `{"env": {"A": null}}`, "env.A: must be a string or an object"},
		{"env object value list", `{"env": {"A": {"value": ["x"]}}}`, "env.A: value must be a string, number or boolean"},
		{"env required as string", `{"env": {"A": {"required": "yes"}}}`, "env.A: required must be a boolean, not string"},
		{"env unknown generator", `{"env": {"A": {"generator": "uuid"}}}`, `env.A: unknown generator "uuid"`},
		{"env value and generator", `{"env": {"A": {"value": "x", "generator": "secret"}}}`, "env.A: has both a value and a generator"},
		{"env NUL value", `{"env": {"A": "x\u0000y"}}`, "NUL byte"},
		{"too large", `{"x": "` + strings.Repeat("a", MaxAppJSONSize) + `"}`, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAppJSON([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseAppJSON = %+v, %v; want an error containing %q", a, err, tt.want)
			}
		})
	}
}

func TestApplyAppEnv(t *testing.T) {
	spec := map[string]EnvVar{
		"PLAIN":    {Value: "hello"},
		"OBJ":      {Value: "5", Description: "processes"},
		"SECRET":   {Generator: EnvGeneratorSecret},
		"OPTIONAL": {Description: "may stay unset"},
		"EXISTING": {Value: "from app.json"},
		"NEEDED":   {Required: true},
	}
	calls := 0
	random := func(n int) string {
		calls++
		if n != SecretLength {
			t.Errorf("random(%d), want %d", n, SecretLength)
		}
		return strings.Repeat("f", n)
	}

	t.Run("first deploy", func(t *testing.T) {
		calls = 0
		current := map[string]string{"EXISTING": "", "NEEDED": "set by config:set"}
		set, err := ApplyAppEnv(spec, current, random)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"PLAIN": "hello", "OBJ": "5", "SECRET": strings.Repeat("f", 64)}
		if !reflect.DeepEqual(set, want) {
			t.Errorf("set %v, want %v", set, want)
		}
		if calls != 1 {
			t.Errorf("random called %d times", calls)
		}
		if current["EXISTING"] != "" || len(current) != 2 {
			t.Errorf("current was changed: %v", current)
		}
	})

	t.Run("secret generated once", func(t *testing.T) {
		calls = 0
		current := map[string]string{"NEEDED": "x"}
		first, err := ApplyAppEnv(spec, current, random)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range first {
			current[k] = v
		}
		current["SECRET"] = "kept"
		second, err := ApplyAppEnv(spec, current, random)
		if err != nil {
			t.Fatal(err)
		}
		if len(second) != 0 || calls != 1 || current["SECRET"] != "kept" {
			t.Errorf("second deploy set %v (random called %d times)", second, calls)
		}
	})

	t.Run("required missing", func(t *testing.T) {
		s := map[string]EnvVar{"B_KEY": {Required: true}, "A_KEY": {Required: true, Description: "x"}, "C": {Value: "c"}}
		set, err := ApplyAppEnv(s, map[string]string{}, random)
		if err == nil || set != nil {
			t.Fatalf("set %v, err %v", set, err)
		}
		if !strings.Contains(err.Error(), "A_KEY, B_KEY") || !errors.Is(err, ErrInvalidValue) {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("required with value or generator", func(t *testing.T) {
		s := map[string]EnvVar{"A": {Required: true, Value: "a"}, "B": {Required: true, Generator: "secret"}}
		set, err := ApplyAppEnv(s, nil, random)
		if err != nil || set["A"] != "a" || len(set["B"]) != 64 {
			t.Errorf("set %v, err %v", set, err)
		}
	})

	t.Run("crypto random by default", func(t *testing.T) {
		set, err := ApplyAppEnv(map[string]EnvVar{"S": {Generator: "secret"}, "T": {Generator: "secret"}}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
		if !hex64.MatchString(set["S"]) || !hex64.MatchString(set["T"]) || set["S"] == set["T"] {
			t.Errorf("secrets %q %q", set["S"], set["T"])
		}
	})

	t.Run("invalid key", func(t *testing.T) {
		_, err := ApplyAppEnv(map[string]EnvVar{"BAD-KEY": {Value: "x"}}, nil, random)
		if !errors.Is(err, ErrInvalidKey) {
			t.Errorf("err = %v", err)
		}
	})
}
