package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// oddValues must survive every path byte for byte.
var oddValues = map[string]string{
	"SPACES":    "  leading and trailing  ",
	"DOLLAR":    "$HOME ${PATH} $(id) `id` $",
	"SINGLE":    "it's 'quoted'",
	"DOUBLE":    `say "hi" ""`,
	"BACKSLASH": `C:\path\to\n \\ \' \" \`,
	"NEWLINES":  "line1\nline2\n\nline4\n",
	"UNICODE":   "héllo wörld ✓ 日本語 🚀",
	"TABS":      "\ta\tb\t",
	"CRLF":      "x\r\ny\r",
	"EMPTY":     "",
	"EQUALS":    "a=b==c=",
	"HASH":      "value # not a comment",
	"MIXED":     "'\"\\$`\n\t ;|&<>*?!{}[]()~ '\\''",
	"lower_key": "lower",
}

func TestConfig(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	c.must(t, "apps:create", "app")

	t.Run("set", func(t *testing.T) {
		res := c.must(t, "config:set", "app", "A=1", "BB=two words")
		if want := "-----> Setting config vars\n       A:   1\n       BB:  two words\n"; res.Stdout != want {
			t.Errorf("config:set stdout = %q, want %q", res.Stdout, want)
		}
		// A later set overrides and adds.
		c.must(t, "config:set", "app", "A=one", "C=it's")
		if got, want := c.env(t, "app"), map[string]string{"A": "one", "BB": "two words", "C": "it's"}; !maps.Equal(got, want) {
			t.Errorf("env = %v, want %v", got, want)
		}
		wantError(t, c.ssh(t, nil, "config:set", "app", "NOEQUALS"), 1, "expected KEY=VALUE")
		wantError(t, c.ssh(t, nil, "config:set", "app"), 1, "Usage")
	})

	t.Run("get", func(t *testing.T) {
		if got := c.must(t, "config:get", "app", "A").Stdout; got != "one\n" {
			t.Errorf("config:get A = %q", got)
		}
		if got := c.must(t, "config:get", "app", "C", "--quoted").Stdout; got != `'it'\''s'`+"\n" {
			t.Errorf("config:get --quoted C = %q", got)
		}
		res := c.ssh(t, nil, "config:get", "app", "MISSING")
		if res.Code != 1 || res.Stdout != "" {
			t.Errorf("config:get of a missing key: %s\nwant exit 1 and no output", res)
		}
		wantError(t, c.ssh(t, nil, "config:get", "app"), 1, "KEY")
	})

	t.Run("keys and show", func(t *testing.T) {
		if got := c.must(t, "config:keys", "app").Stdout; got != "A\nBB\nC\n" {
			t.Errorf("config:keys = %q", got)
		}
		want := "=====> app env vars\nA:   one\nBB:  two words\nC:   it's\n"
		for _, cmd := range []string{"config", "config:show"} {
			if got := c.must(t, cmd, "app").Stdout; got != want {
				t.Errorf("%s app = %q, want %q", cmd, got, want)
			}
		}
	})

	t.Run("unset", func(t *testing.T) {
		res := c.must(t, "config:unset", "app", "A", "C")
		if res.Stdout != "-----> Unsetting A\n-----> Unsetting C\n" {
			t.Errorf("config:unset stdout = %q", res.Stdout)
		}
		if got, want := c.env(t, "app"), map[string]string{"BB": "two words"}; !maps.Equal(got, want) {
			t.Errorf("env after unset = %v, want %v", got, want)
		}
		// Unsetting a key that is not set is not an error.
		c.must(t, "config:unset", "app", "NEVER_SET")
		wantError(t, c.ssh(t, nil, "config:unset", "app"), 1, "Usage")
	})

	t.Run("clear", func(t *testing.T) {
		c.must(t, "config:set", "app", "X=1", "Y=2")
		res := c.must(t, "config:clear", "app")
		if res.Stdout != "-----> Clearing config vars\n" {
			t.Errorf("config:clear stdout = %q", res.Stdout)
		}
		if env := c.env(t, "app"); len(env) != 0 {
			t.Errorf("env after clear = %v", env)
		}
		if got := c.must(t, "config:export", "app").Stdout; got != "" {
			t.Errorf("config:export of an empty env = %q, want nothing", got)
		}
		if got := c.must(t, "config:export", "app", "--format", "json").Stdout; got != "{}\n" {
			t.Errorf("config:export --format json of an empty env = %q, want {}", got)
		}
		if got := c.must(t, "config:show", "app").Stdout; got != "=====> app env vars\n" {
			t.Errorf("config:show of an empty env = %q", got)
		}
		if got := c.must(t, "config:keys", "app").Stdout; got != "" {
			t.Errorf("config:keys of an empty env = %q", got)
		}
	})
}

func TestConfigExportFormats(t *testing.T) {
	t.Parallel()
	srv, c := setup(t)
	c.must(t, "apps:create", "fmt")
	// Set in an unsorted order; lower case sorts after upper case byte-wise.
	c.must(t, "config:set", "fmt", `a_lower=$HOME "q"`, "C=it's", "A=1", "B=hello world")

	cases := []struct{ format, want string }{
		{"exports", "export A='1'\nexport B='hello world'\nexport C='it'\\''s'\nexport a_lower='$HOME \"q\"'\n"},
		{"envfile", "A='1'\nB='hello world'\nC='it'\\''s'\na_lower='$HOME \"q\"'\n"},
		{"docker-args", "--env=A='1' --env=B='hello world' --env=C='it'\\''s' --env=a_lower='$HOME \"q\"'\n"},
		{"docker-args-keys", "--env=A --env=B --env=C --env=a_lower\n"},
		{"shell", "A='1' B='hello world' C='it'\\''s' a_lower='$HOME \"q\"'\n"},
		{"json", `{"A":"1","B":"hello world","C":"it's","a_lower":"$HOME \"q\""}` + "\n"},
		{"json-list", `[{"name":"A","value":"1"},{"name":"B","value":"hello world"},{"name":"C","value":"it's"},{"name":"a_lower","value":"$HOME \"q\""}]` + "\n"},
		{"pretty", "A:        1\nB:        hello world\nC:        it's\na_lower:  $HOME \"q\"\n"},
	}
	for _, tc := range cases {
		t.Run(tc.format, func(t *testing.T) {
			res := c.must(t, "config:export", "fmt", "--format", tc.format)
			if res.Stdout != tc.want {
				t.Errorf("config:export --format %s:\ngot  %q\nwant %q", tc.format, res.Stdout, tc.want)
			}
			if local := srv.mustCLI(t, nil, "config:export", "fmt", "--format="+tc.format); local.Stdout != res.Stdout {
				t.Errorf("local CLI printed %q, SSH %q", local.Stdout, res.Stdout)
			}
		})
	}
	t.Run("default is exports", func(t *testing.T) {
		if got := c.must(t, "config:export", "fmt").Stdout; got != cases[0].want {
			t.Errorf("config:export = %q, want %q", got, cases[0].want)
		}
	})
	t.Run("unknown format", func(t *testing.T) {
		wantError(t, c.ssh(t, nil, "config:export", "fmt", "--format", "yaml"), 1, "yaml")
	})
}

func TestConfigImport(t *testing.T) {
	t.Parallel()
	srv, c := setup(t)
	c.must(t, "apps:create", "imp")
	c.must(t, "config:set", "imp", "KEEP=kept", "X=old")

	t.Run("envfile from stdin", func(t *testing.T) {
		in := "# a comment\n\nexport X=1\nY='two words'\nZ=\"a\\nb \\\"q\\\"\"\nW=bare # trailing comment\n"
		res := c.mustIn(t, []byte(in), "config:import", "imp")
		if !strings.HasPrefix(res.Stdout, "-----> Importing 4 config vars\n") {
			t.Errorf("config:import stdout = %q", res.Stdout)
		}
		want := map[string]string{"KEEP": "kept", "X": "1", "Y": "two words", "Z": "a\nb \"q\"", "W": "bare"}
		if got := c.env(t, "imp"); !maps.Equal(got, want) {
			t.Errorf("env = %q, want %q", got, want)
		}
	})

	t.Run("json from stdin", func(t *testing.T) {
		c.mustIn(t, []byte(`{"J":"json value","X":"from json"}`), "config:import", "imp")
		c.mustIn(t, []byte(`{"K":"explicit"}`), "config:import", "imp", "--format", "json")
		c.mustIn(t, []byte("L=dash\n"), "config:import", "imp", "-", "--format", "envfile")
		env := c.env(t, "imp")
		for k, v := range map[string]string{"J": "json value", "X": "from json", "K": "explicit", "L": "dash", "KEEP": "kept"} {
			if env[k] != v {
				t.Errorf("%s = %q, want %q (env %q)", k, env[k], v, env)
			}
		}
	})

	t.Run("replace", func(t *testing.T) {
		c.mustIn(t, []byte(`{"ONLY":"this"}`), "config:import", "imp", "--replace")
		if got, want := c.env(t, "imp"), map[string]string{"ONLY": "this"}; !maps.Equal(got, want) {
			t.Errorf("env after --replace = %v, want %v", got, want)
		}
		c.mustIn(t, []byte("A=1\nB=2\n"), "config:import", "imp", "--replace", "--format", "envfile")
		if got, want := c.env(t, "imp"), map[string]string{"A": "1", "B": "2"}; !maps.Equal(got, want) {
			t.Errorf("env after envfile --replace = %v, want %v", got, want)
		}
	})

	t.Run("bad input changes nothing", func(t *testing.T) {
		before := c.env(t, "imp")
		for name, in := range map[string]string{
			"no equals":       "C=3\nNOEQUALS\n",
			"bad key":         "C=3\n1BAD=x\n",
			"dash key":        "C=3\nA-B=x\n",
			"unterminated":    "C=3\nD='open\n",
			"broken json":     `{"C":"3",`,
			"non-string json": `{"C":"3","D":{"x":1}}`,
			"bad json key":    `{"C":"3","1BAD":"x"}`,
		} {
			t.Run(name, func(t *testing.T) {
				wantError(t, c.ssh(t, []byte(in), "config:import", "imp", "--replace"), 1, "")
				if got := c.env(t, "imp"); !maps.Equal(got, before) {
					t.Errorf("env changed by a refused import: %v, was %v", got, before)
				}
			})
		}
	})

	t.Run("oversized input changes nothing", func(t *testing.T) {
		before := c.env(t, "imp")
		big := "BIG=" + strings.Repeat("x", 5<<20) + "\n"
		wantError(t, c.ssh(t, []byte(big), "config:import", "imp", "--replace"), 1, "too large")
		wantError(t, srv.cli(t, []byte(big), "config:import", "imp", "--replace"), 1, "too large")
		value := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("v"), 65<<10+1))
		wantError(t, srv.cli(t, nil, "config:set", "--encoded", "imp", "OK=b2s=", "BIG="+value), 1, "too large")
		if got := c.env(t, "imp"); !maps.Equal(got, before) {
			t.Errorf("env changed by an oversized request: %v, was %v", got, before)
		}
	})

	t.Run("a server file only locally", func(t *testing.T) {
		wantError(t, c.ssh(t, nil, "config:import", "imp", "/etc/hostname"), 1, "")
		path := filepath.Join(t.TempDir(), "env")
		writeFile(t, path, "FROM_FILE=yes\n")
		srv.mustCLI(t, nil, "config:import", "imp", path)
		if got := c.env(t, "imp")["FROM_FILE"]; got != "yes" {
			t.Errorf("FROM_FILE = %q after a local import from a file", got)
		}
	})

	t.Run("a file relative to the working directory", func(t *testing.T) {
		// `rivetr config:import APP FILE` run where FILE is: the path is
		// the user's, not the daemon's working directory.
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "rel.env"), "RELATIVE=yes\n")
		wantOK(t, srv.cliIn(t, dir, nil, "config:import", "imp", "rel.env"))
		if got := c.env(t, "imp")["RELATIVE"]; got != "yes" {
			t.Errorf("RELATIVE = %q after a local import from a relative path", got)
		}
	})
}

func TestConfigRoundTrip(t *testing.T) {
	t.Parallel()
	srv, c := setup(t)
	c.must(t, "apps:create", "src")
	c.must(t, "apps:create", "dst")
	c.must(t, "apps:create", "raw")
	c.must(t, "apps:create", "local")

	args := []string{"config:set", "--encoded", "src"}
	for k, v := range oddValues {
		args = append(args, k+"="+base64.StdEncoding.EncodeToString([]byte(v)))
	}
	c.must(t, args...)

	t.Run("export json", func(t *testing.T) {
		if got := c.env(t, "src"); !maps.Equal(got, oddValues) {
			for k, v := range oddValues {
				if got[k] != v {
					t.Errorf("%s: got %q, want %q", k, got[k], v)
				}
			}
			t.Errorf("export json: got %d keys, want %d", len(got), len(oddValues))
		}
	})

	t.Run("get", func(t *testing.T) {
		for k, v := range oddValues {
			res := c.must(t, "config:get", "src", k)
			if got, ok := strings.CutSuffix(res.Stdout, "\n"); !ok || got != v {
				t.Errorf("config:get %s = %q, want %q", k, res.Stdout, v+"\n")
			}
		}
	})

	t.Run("shell formats evaluate to the values", func(t *testing.T) {
		exports := c.must(t, "config:export", "src", "--format", "exports").Stdout
		for k, v := range oddValues {
			got := shellValue(t, exports, k)
			if got != v {
				t.Errorf("sh eval exports: %s = %q, want %q", k, got, v)
			}
		}
		for k, v := range oddValues {
			quoted := c.must(t, "config:get", "src", k, "--quoted").Stdout
			if got := shellValue(t, "V="+quoted, "V"); got != v {
				t.Errorf("sh eval config:get --quoted %s = %q, want %q", k, got, v)
			}
		}
	})

	t.Run("envfile into import", func(t *testing.T) {
		envfile := c.must(t, "config:export", "src", "--format", "envfile").Stdout
		c.mustIn(t, []byte(envfile), "config:import", "dst")
		if got := c.env(t, "dst"); !maps.Equal(got, oddValues) {
			t.Errorf("envfile round trip:\ngot  %q\nwant %q", got, oddValues)
		}
		exports := c.must(t, "config:export", "src", "--format", "exports").Stdout
		c.mustIn(t, []byte(exports), "config:import", "dst", "--replace")
		if got := c.env(t, "dst"); !maps.Equal(got, oddValues) {
			t.Errorf("exports round trip:\ngot  %q\nwant %q", got, oddValues)
		}
		json := c.must(t, "config:export", "src", "--format", "json").Stdout
		c.mustIn(t, []byte(json), "config:import", "dst", "--replace")
		if got := c.env(t, "dst"); !maps.Equal(got, oddValues) {
			t.Errorf("json round trip:\ngot  %q\nwant %q", got, oddValues)
		}
	})

	t.Run("plain arguments over SSH", func(t *testing.T) {
		args := []string{"config:set", "raw"}
		for k, v := range oddValues {
			args = append(args, k+"="+v)
		}
		c.must(t, args...)
		if got := c.env(t, "raw"); !maps.Equal(got, oddValues) {
			for k, v := range oddValues {
				if got[k] != v {
					t.Errorf("%s: got %q, want %q", k, got[k], v)
				}
			}
		}
	})

	t.Run("plain arguments on the local CLI", func(t *testing.T) {
		args := []string{"config:set", "local"}
		for k, v := range oddValues {
			args = append(args, k+"="+v)
		}
		srv.mustCLI(t, nil, args...)
		if got := c.env(t, "local"); !maps.Equal(got, oddValues) {
			t.Errorf("local config:set:\ngot  %q\nwant %q", got, oddValues)
		}
		res := srv.mustCLI(t, nil, "config:get", "local", "MIXED")
		if res.Stdout != oddValues["MIXED"]+"\n" {
			t.Errorf("local config:get MIXED = %q", res.Stdout)
		}
	})

	t.Run("bad base64 refused", func(t *testing.T) {
		wantError(t, c.ssh(t, nil, "config:set", "--encoded", "src", "NEW=not*base64", "OTHER=b2s="), 1, "base64")
		env := c.env(t, "src")
		if _, ok := env["OTHER"]; ok {
			t.Error("a refused --encoded set stored part of its values")
		}
	})
}

// shellValue evaluates script in sh and returns variable name's value.
func shellValue(t *testing.T, script, name string) string {
	t.Helper()
	res := run(t, exec.Command("sh", "-c", `eval "$1" && eval "printf '%s' \"\${$2}\""`, "sh", script, name), nil)
	if res.Code != 0 {
		t.Fatalf("sh eval: %s", res)
	}
	return res.Stdout
}

func TestConfigInvalidKey(t *testing.T) {
	t.Parallel()
	srv, c := setup(t)
	c.must(t, "apps:create", "app")
	c.must(t, "config:set", "app", "GOOD=1")
	c.must(t, "config:set", "--global", "G=1")
	want := map[string]string{"GOOD": "1"}

	for _, key := range []string{"1BAD", "A-B", "A.B", "A B", "", "É", "KEY$"} {
		t.Run(key, func(t *testing.T) {
			for _, args := range [][]string{
				{"config:set", "app", "NEW=1", key + "=x"},
				{"config:set", "--global", "NEW=1", key + "=x"},
				{"config:set", "--encoded", "app", "NEW=MQ==", key + "=eA=="},
			} {
				res := c.ssh(t, nil, args...)
				wantError(t, res, 1, "")
				if local := srv.cli(t, nil, args...); local.Code == 0 {
					t.Errorf("local %q succeeded", args)
				}
			}
			if key != "" {
				wantError(t, c.ssh(t, nil, "config:get", "app", key), 1, "Invalid env var name")
				wantError(t, c.ssh(t, nil, "config:unset", "app", "GOOD", key), 1, "Invalid env var name")
			}
			if got := c.env(t, "app"); !maps.Equal(got, want) {
				t.Errorf("env changed: %v, want %v", got, want)
			}
			if got := c.env(t, "--global"); !maps.Equal(got, map[string]string{"G": "1"}) {
				t.Errorf("global env changed: %v", got)
			}
		})
	}
	res := c.ssh(t, nil, "config:set", "app", "1BAD=x")
	if !strings.Contains(res.Stderr, `Invalid env var name "1BAD"`) {
		t.Errorf("config:set 1BAD=x: %s", res)
	}
}

func TestConfigBundle(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	c.must(t, "apps:create", "app")
	args := []string{"config:set", "--encoded", "app"}
	for k, v := range oddValues {
		args = append(args, k+"="+base64.StdEncoding.EncodeToString([]byte(v)))
	}
	c.must(t, args...)
	c.must(t, "config:set", "--global", "GLOBAL_ONLY=g")

	check := func(t *testing.T, want map[string]string, args ...string) {
		t.Helper()
		res := c.must(t, args...)
		tr := tar.NewReader(strings.NewReader(res.Stdout))
		got := map[string]string{}
		var names []string
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%q: read tar: %v", args, err)
			}
			if hdr.Typeflag != tar.TypeReg {
				t.Errorf("%s is not a regular file", hdr.Name)
			}
			var b bytes.Buffer
			if _, err := io.Copy(&b, tr); err != nil {
				t.Fatalf("read %s: %v", hdr.Name, err)
			}
			got[hdr.Name] = b.String()
			names = append(names, hdr.Name)
		}
		if !maps.Equal(got, want) {
			t.Errorf("%q bundle:\ngot  %q\nwant %q", args, got, want)
		}
		if !slices.IsSorted(names) {
			t.Errorf("bundle entries not sorted: %q", names)
		}
	}
	t.Run("app", func(t *testing.T) { check(t, oddValues, "config:bundle", "app") })
	t.Run("merged", func(t *testing.T) {
		want := maps.Clone(oddValues)
		want["GLOBAL_ONLY"] = "g"
		check(t, want, "config:bundle", "app", "--merged")
	})
	t.Run("global", func(t *testing.T) {
		check(t, map[string]string{"GLOBAL_ONLY": "g"}, "config:bundle", "--global")
	})
}

func TestConfigGlobal(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	c.must(t, "apps:create", "app")
	c.must(t, "config:set", "--global", "G=global", "SHARED=from global")
	c.must(t, "config:set", "app", "SHARED=from app", "OWN=own")

	if got := c.must(t, "config:get", "--global", "G").Stdout; got != "global\n" {
		t.Errorf("config:get --global G = %q", got)
	}
	if got, want := c.env(t, "--global"), map[string]string{"G": "global", "SHARED": "from global"}; !maps.Equal(got, want) {
		t.Errorf("global env = %v, want %v", got, want)
	}
	if got, want := c.env(t, "app"), map[string]string{"SHARED": "from app", "OWN": "own"}; !maps.Equal(got, want) {
		t.Errorf("app env = %v, want %v", got, want)
	}
	if got, want := c.env(t, "app", "--merged"), map[string]string{"G": "global", "SHARED": "from app", "OWN": "own"}; !maps.Equal(got, want) {
		t.Errorf("merged env = %v, want %v", got, want)
	}
	if res := c.ssh(t, nil, "config:get", "app", "G"); res.Code != 1 || res.Stdout != "" {
		t.Errorf("config:get app G (global only): %s\nwant exit 1", res)
	}
	if got := c.must(t, "config:get", "app", "--merged", "G").Stdout; got != "global\n" {
		t.Errorf("config:get --merged G = %q", got)
	}
	if got := c.must(t, "config:keys", "app", "--merged").Stdout; got != "G\nOWN\nSHARED\n" {
		t.Errorf("config:keys --merged = %q", got)
	}
	if got := c.must(t, "config:show", "--global").Stdout; got != "=====> global env vars\nG:       global\nSHARED:  from global\n" {
		t.Errorf("config:show --global = %q", got)
	}
	if got := c.must(t, "config:show", "app", "--merged").Stdout; got != "=====> app env vars\nG:       global\nOWN:     own\nSHARED:  from app\n" {
		t.Errorf("config:show --merged = %q", got)
	}
	wantError(t, c.ssh(t, nil, "config:export", "--global", "--merged"), 1, "--merged")

	c.mustIn(t, []byte("IMPORTED=yes\n"), "config:import", "--global")
	c.must(t, "config:unset", "--global", "G")
	if got, want := c.env(t, "--global"), map[string]string{"SHARED": "from global", "IMPORTED": "yes"}; !maps.Equal(got, want) {
		t.Errorf("global env = %v, want %v", got, want)
	}
	c.must(t, "config:clear", "--global")
	if got := c.env(t, "--global"); len(got) != 0 {
		t.Errorf("global env after clear = %v", got)
	}
	if got, want := c.env(t, "app"), map[string]string{"SHARED": "from app", "OWN": "own"}; !maps.Equal(got, want) {
		t.Errorf("app env after global clear = %v, want %v", got, want)
	}
}
